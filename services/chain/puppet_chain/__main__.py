"""Entry point: python -m puppet_chain."""

from puppet_chain.server import main

main()
