"""soundmark stream: live stream monitoring (filled in by its issue)."""

from __future__ import annotations

import click


@click.group("stream", hidden=True)
def stream_group() -> None:
    """Not available yet."""
