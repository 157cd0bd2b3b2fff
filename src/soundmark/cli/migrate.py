"""soundmark migrate: copy an embedded store into the configured PostgreSQL + Redis Cluster."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from soundmark.cli.common import db_option, load_settings
from soundmark.errors import StoreError
from soundmark.migrate import MigrateProgress, MigrateReport, migrate
from soundmark.migrate.run import BATCH_TRACKS


@click.command("migrate")
@db_option
@click.option(
    "--to",
    "dest",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The new node directory: it will hold catalog.url (run the nodes with --db on it).",
)
@click.option("--catalog-url", default=None, help="Target PostgreSQL catalog [env SOUNDMARK_CATALOG_URL].")
@click.option("--index-url", default=None, help="Target Redis Cluster index [env SOUNDMARK_INDEX_URL].")
@click.option("--batch", type=click.IntRange(min=1), default=BATCH_TRACKS, show_default=True, help="Tracks per commit.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def migrate_command(
    db: Path | None, dest: Path, catalog_url: str | None, index_url: str | None, batch: int, as_json: bool,
    quiet: bool,
) -> None:  # fmt: skip
    """Copy the embedded store --db into PostgreSQL + a Redis Cluster, with --to as the new node directory.

    Tracks keep their ids, metadata and fingerprints; tokens (their hashes), usage, stream accounts,
    streams, stream health, plays and stream events move too; web sessions and jobs do not. The
    source is only read. An interrupted run resumes where it stopped when run again, and a later
    run brings the copy up to date (stop the old server, migrate again, start the nodes). The copy
    is checked at the end; the exit status is 1 when the check finds a difference.
    """
    settings = load_settings(db=db, catalog_url=catalog_url, index_url=index_url)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=quiet or not console.is_terminal,
    ) as bar:  # fmt: skip
        tasks: dict[str, TaskID] = {}

        def show(p: MigrateProgress) -> None:
            if p.stage not in tasks:
                tasks[p.stage] = bar.add_task(p.stage, total=p.total)
            bar.update(tasks[p.stage], completed=p.done, total=p.total)

        try:
            report = migrate(
                settings.db,
                dest,
                catalog_url=settings.catalog_url,
                index_url=settings.index_url,
                batch_tracks=batch,
                progress=show,
            )
        except StoreError as exc:
            raise click.ClickException(
                f"migrate stopped: {exc}. What was copied is kept; run the same command again to resume."
            ) from exc
    _print(report, dest, as_json)
    if not report.verification.ok:
        raise SystemExit(1)


def _print(report: MigrateReport, dest: Path, as_json: bool) -> None:
    v = report.verification
    if as_json:
        out = {
            "tracks": asdict(report.tracks),
            "tables": report.tables,
            "not_copied": list(report.not_copied),
            "verification": {**asdict(v), "ok": v.ok},
        }
        click.echo(json.dumps(out))
        return
    t = report.tracks
    click.echo(
        f"copied {t.copied} tracks ({t.postings} postings), {t.skipped} already there; "
        f"{sum(report.tables.values())} rows of {len(report.tables)} tables; "
        f"not copied: {', '.join(report.not_copied)}"
    )
    click.echo(
        f"check: {v.tracks[1]}/{v.tracks[0]} tracks, {v.postings[1]}/{v.postings[0]} postings, "
        f"lookups of {v.sample_hashes} hashes of {len(v.sample_tracks)} tracks "
        f"{'identical' if v.lookups_equal else 'DIFFERENT'}"
    )
    for name, (src, dst) in v.tables.items():
        if src != dst:
            click.echo(f"  {name}: {src} rows in the source, {dst} in the target")
    if v.differing_tracks:
        click.echo(f"  tracks that differ: {', '.join(map(str, v.differing_tracks))}")
    click.echo(f"{'ok' if v.ok else 'DIFFERENCES FOUND'}: serve the cluster with --db {dest}")
