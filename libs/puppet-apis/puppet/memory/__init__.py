"""Generated package puppet/memory."""
