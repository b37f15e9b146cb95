"""Generated package puppet/agent."""
