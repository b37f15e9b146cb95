"""Generated package puppet/llm."""
