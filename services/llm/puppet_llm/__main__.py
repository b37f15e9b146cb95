"""Entry point: python -m puppet_llm."""

from puppet_llm.server import main

main()
