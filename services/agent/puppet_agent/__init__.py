"""AgentService: loads personas and runs their lives; the public API."""
