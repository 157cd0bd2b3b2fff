"""soundmark demo: build the demo catalog so a fresh install recognises something."""

from __future__ import annotations

from pathlib import Path

import click

from soundmark.catalog.manifest import read_manifest
from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.ingest import ingest, items_from_manifest


@click.command("demo")
@db_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Folder for the rendered demo tracks and the demo clip.",
)
def demo_command(db: Path | None, out: Path) -> None:
    """Compose a small demo catalog (procedural music), ingest it, and render a demo clip
    recorded "over the air" (room reverb + noise) to try `soundmark recognize` on."""
    from soundmark.demo import build_demo_catalog

    settings = load_settings(db=db)
    manifest = build_demo_catalog(out)
    with open_store(settings.db, create=True, index_url=settings.index_url, catalog_url=settings.catalog_url) as store:
        report = ingest(store, items_from_manifest(read_manifest(manifest)), processes=settings.ingest_processes)
        info = store.info()
    click.echo(f"demo catalog: {info.tracks} tracks in {settings.db} ({len(report.added)} added now)")
    click.echo(f"try: soundmark recognize --db {settings.db} {out / 'demo-clip.wav'}")
