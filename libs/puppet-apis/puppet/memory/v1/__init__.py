"""Generated package puppet/memory/v1."""
