"""Generated package puppet/chain."""
