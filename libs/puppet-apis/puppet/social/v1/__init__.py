"""Generated package puppet/social/v1."""
