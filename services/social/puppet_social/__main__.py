"""Entry point: python -m puppet_social."""

from puppet_social.server import main

main()
