"""`python -m puppet_cli` runs the `puppet` CLI."""

from puppet_cli.app import main

main()
