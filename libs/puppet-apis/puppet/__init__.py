"""Generated package puppet."""
