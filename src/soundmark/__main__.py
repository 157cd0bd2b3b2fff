"""``python -m soundmark`` runs the CLI."""

from soundmark.cli.main import main

main()
