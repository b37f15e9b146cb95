"""Generated package puppet/agent/v1."""
