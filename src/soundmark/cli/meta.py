"""soundmark meta: show or change a track's metadata (e.g. a custom-catalog upload's), through the
catalog use case ``services.catalog.edit_metadata``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.services.catalog import MetaEdit, TrackRef, edit_metadata
from soundmark.services.errors import ServiceError


@click.command("meta")
@db_option
@click.option("--track-id", type=int, default=None, help="The track, by soundmark's id (see `soundmark list`).")
@click.option("--audio-id", type=int, default=None, help="The track, by its AudD custom-catalog audio_id.")
@click.option("--title", default=None, help="New title.")
@click.option("--artist", default=None, help="New artist.")
@click.option("--album", default=None, help="New album.")
@click.option("--release-date", default=None, help="New release date (YYYY-MM-DD, YYYY-MM or YYYY).")
@click.option("--label", default=None, help="New label.")
@click.option("--isrc", default=None, help="New ISRC.")
@click.option("--upc", default=None, help="New UPC / barcode.")
@click.option("--lyrics-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the lyrics from this UTF-8 text file.")  # fmt: skip
@click.option("--external", "externals", multiple=True, metavar="KEY=VALUE",
              help="Set an external id or link (spotify_id=..., apple_music_url@gb=...); an empty VALUE "
                   "removes the key. Repeatable.")  # fmt: skip
def meta_command(
    db: Path | None, track_id: int | None, audio_id: int | None, title: str | None, artist: str | None,
    album: str | None, release_date: str | None, label: str | None, isrc: str | None, upc: str | None,
    lyrics_file: Path | None, externals: tuple[str, ...],
) -> None:  # fmt: skip
    """Show a track's metadata as JSON, or change the fields given (others stay as they are)."""
    try:
        ref = TrackRef(track_id=track_id, audio_id=audio_id)
    except ValueError as exc:
        raise click.UsageError("name the track with exactly one of --track-id or --audio-id") from exc
    external: dict[str, str] = {}
    for item in externals:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.UsageError(f"--external needs KEY=VALUE, got {item!r}")
        external[key.strip()] = value
    edit = MetaEdit(
        title=title, artist=artist, album=album, release_date=release_date, label=label, isrc=isrc, upc=upc,
        lyrics=lyrics_file.read_text(encoding="utf-8") if lyrics_file is not None else None, external=external,
    )  # fmt: skip
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        try:
            track = edit_metadata(store, ref, edit)
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"id": track.id, **asdict(track.meta)}, ensure_ascii=False))
