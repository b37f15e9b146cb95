"""A fake of Jupiter's HTTP API (Swap API v1 and Price API v3) that fills at fixed prices."""

from puppet_chain.localnet.jupiter.book import SOL_MINT
from puppet_chain.localnet.jupiter.errors import JupiterError
from puppet_chain.localnet.jupiter.server import LocalJupiter

__all__ = ["SOL_MINT", "JupiterError", "LocalJupiter"]
