"""Entry point: python -m puppet_agent."""

from puppet_agent.server import main

main()
