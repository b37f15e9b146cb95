"""Generated package puppet/social."""
