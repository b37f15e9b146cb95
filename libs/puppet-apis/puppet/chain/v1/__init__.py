"""Generated package puppet/chain/v1."""
