"""One module per command group; each exposes plain functions that app.py registers."""
