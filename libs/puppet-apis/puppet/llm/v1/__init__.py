"""Generated package puppet/llm/v1."""
