"""soundmark add: ingest audio files, folders or a CSV manifest into a store."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.errors import StoreError
from soundmark.ingest import IngestItem
from soundmark.services.catalog import add_files, items_to_add
from soundmark.services.errors import ServiceError


@click.command("add")
@db_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV with path,title,artist,album,release_date,label[,isrc,upc,lyrics,audio_id,...]; "
    "its values override the files' tags; extra columns become external ids.",
)
@click.option(
    "--processes",
    "--jobs",
    "-j",
    "processes",
    type=int,
    default=None,
    help="Fingerprinting worker processes [default: one per core; SOUNDMARK_INGEST_PROCESSES].",
)
@click.option("--batch", type=int, default=None, help="Tracks committed per atomic batch [default 64].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def add_command(
    db: Path | None, paths: tuple[Path, ...], manifest: Path | None, processes: int | None,
    batch: int | None, as_json: bool, quiet: bool,
) -> None:  # fmt: skip
    """Fingerprint audio files and add them to the catalog.

    PATHS are audio files or folders (searched recursively). Tags (ID3, Vorbis comments, MP4,
    FLAC; MusicBrainz ids and ISRC as Picard writes them) fill the metadata. Audio already in
    the store is reported as a duplicate and not added twice; an interrupted run keeps every
    committed batch and a re-run resumes, skipping files already stored (same path, size and
    mtime, or the same bytes) without decoding them.
    """
    settings = load_settings(db=db, ingest_processes=processes, batch_tracks=batch)
    if not paths and manifest is None:
        raise click.UsageError("give audio files/folders or --manifest CSV")
    try:
        items = items_to_add(paths, manifest)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from exc
    store = open_store(settings.db, create=True, index_url=settings.index_url, catalog_url=settings.catalog_url)
    console = Console(stderr=True)
    with store, Progress(
        TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"), console=console, disable=quiet or not console.is_terminal,
    ) as bar:  # fmt: skip
        task = bar.add_task("ingest", total=len(items), last="")

        def advance(item: IngestItem, status: str) -> None:
            bar.update(task, advance=1, last=f"{status}: {item.path.name}")

        try:
            report = add_files(store, items, settings, progress=advance)
        except StoreError as exc:  # a full disk, typically: the store stays as it was before the batch
            raise click.ClickException(
                f"add stopped: {exc}. Every batch committed before the failure is kept and nothing "
                "half-written remains; free some space and run the same command again to resume."
            ) from exc
        info = store.info()
    summary = {
        "added": len(report.added),
        "duplicates": len(report.duplicates),
        "known": len(report.known),
        "failed": len(report.failures),
        "audio_hours": round(report.audio_seconds / 3600, 3),
        "wall_seconds": round(report.wall_seconds, 2),
        "realtime_factor": round(report.realtime_factor, 1),
        "db_bytes": info.bytes_on_disk,
        "tracks_in_store": info.tracks,
    }
    if as_json:
        click.echo(
            json.dumps(
                {**summary, "failures": report.failures, "duplicate_of": report.duplicates, "known_as": report.known}
            )
        )
    else:
        click.echo(
            f"added {summary['added']} tracks ({summary['audio_hours']:.2f} h of audio) in "
            f"{summary['wall_seconds']:.1f} s = {summary['realtime_factor']:.0f}x realtime; "
            f"{summary['duplicates']} duplicates skipped; {summary['known']} files already in the store "
            f"(not decoded again); {summary['failed']} failed; "
            f"store now holds {info.tracks} tracks"
        )
        for path, existing in report.duplicates:
            where = f"track {existing}" if existing >= 0 else "another file of this run"
            click.echo(f"  duplicate: {path} (same audio as {where})")
        for path, reason in report.failures:
            click.echo(f"  failed: {path}: {reason}")
