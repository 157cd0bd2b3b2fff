"""soundmark scan: find every catalog track in a long recording (filled in by its issue)."""

from __future__ import annotations

import click


@click.command("scan", hidden=True)
def scan_command() -> None:
    """Not available yet."""
    raise click.ClickException("scan is not available yet")
