"""soundmark info / remove / list: look after a store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from soundmark.cli.common import db_option, human_bytes, load_settings, open_store
from soundmark.services.catalog import remove_tracks


@click.command("info")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_command(db: Path | None, as_json: bool) -> None:
    """Show how many tracks, hours of audio, fingerprints and bytes the store holds."""
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        info = store.info()
    per_hour = round(info.bytes_on_disk / info.hours) if info.hours else 0
    data = {
        "db": str(settings.db),
        "tracks": info.tracks,
        "hours": round(info.hours, 3),
        "fingerprints": info.postings,
        "segments": info.segments,
        "bytes_on_disk": info.bytes_on_disk,
        "bytes_per_hour": per_hour,
        "fingerprint_params": info.params_signature,
    }
    if as_json:
        click.echo(json.dumps(data))
        return
    click.echo(f"store          {data['db']}")
    click.echo(f"tracks         {info.tracks}")
    click.echo(f"audio          {info.hours:.2f} h")
    click.echo(f"fingerprints   {info.postings:,} in {info.segments} segment(s)")
    click.echo(f"on disk        {human_bytes(info.bytes_on_disk)} ({human_bytes(per_hour)}/h)")
    click.echo(f"parameters     {info.params_signature}")


@click.command("remove")
@db_option
@click.argument("track_ids", nargs=-1, required=True, type=int)
def remove_command(db: Path | None, track_ids: tuple[int, ...]) -> None:
    """Delete tracks (by id) and all their fingerprints from the store."""
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        removal = remove_tracks(store, track_ids)
    for tid in removal.removed:
        click.echo(f"removed track {tid}")
    if removal.missing:
        raise click.ClickException(f"no such track: {', '.join(map(str, removal.missing))}")


@click.command("list")
@db_option
@click.option("--limit", type=int, default=100, show_default=True, help="Tracks to show.")
@click.option("--offset", type=int, default=0, show_default=True, help="Tracks to skip.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per track.")
def list_command(db: Path | None, limit: int, offset: int, as_json: bool) -> None:
    """List the catalog's tracks with their ids."""
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        tracks = store.catalog.list_tracks(limit, offset)
    for t in tracks:
        m = t.meta
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": t.id,
                        "title": m.title,
                        "artist": m.artist,
                        "album": m.album,
                        "duration": round(t.duration, 2),
                        "isrc": m.isrc,
                        "source": t.source,
                    }
                )
            )
        else:
            click.echo(f"{t.id:>6}  {t.duration / 60:5.1f} min  {m.artist or '?'} - {m.title or '?'}")
