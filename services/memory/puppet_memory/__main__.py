"""Entry point: python -m puppet_memory."""

from puppet_memory.server import main

main()
