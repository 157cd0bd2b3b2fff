"""soundmark audit: duplicates and near-duplicates in a music folder or a store, adding nothing."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from soundmark.audit.render import as_csv, as_json, as_text
from soundmark.audit.run import AuditOptions, AuditReport, NothingToAuditError, ProgressFn, audit_folder, audit_store
from soundmark.cli.common import load_settings, open_store
from soundmark.fingerprint.params import FingerprintParams


@click.command("audit")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--db",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Audit the tracks of this store instead of files: read from its stored fingerprints "
    "(nothing decoded, nothing written).",
)
@click.option(
    "--min-overlap",
    type=click.FloatRange(min=1.0),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Shortest stretch of shared audio reported.",
)
@click.option(
    "--processes",
    "-j",
    type=click.IntRange(min=0),
    default=None,
    help="Fingerprinting worker processes for files [default: one per core; SOUNDMARK_INGEST_PROCESSES].",
)
@click.option("--json", "as_json_flag", is_flag=True, help="Print the report as one JSON object.")
@click.option("--csv", "as_csv_flag", is_flag=True, help="Print one CSV row per pair of files sharing audio.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def audit_command(
    paths: tuple[Path, ...], db: Path | None, min_overlap: float, processes: int | None,
    as_json_flag: bool, as_csv_flag: bool, quiet: bool,
) -> None:  # fmt: skip
    """Find files that share audio, without adding anything to any store.

    PATHS are audio files or folders (searched recursively); with --db the tracks of a store
    are audited instead. Every file is fingerprinted once; its rarest hashes pick the files it
    may share audio with, and it is compared with those on all their hashes. The
    same recording re-encoded or remastered is reported as `same`, a radio edit inside the album
    version or a track inside a longer mix as `contains` (the container first), a partial match
    as `overlap` — each with the seconds shared, the share of each file and where (start–end in
    each). Files that share audio form a group. A file that cannot be decoded is reported and
    the audit goes on. A copy played at another speed is not found.
    """
    if bool(paths) == (db is not None):
        raise click.UsageError("give audio files/folders to audit, or --db STORE (not both)")
    if as_json_flag and as_csv_flag:
        raise click.UsageError("choose one of --json and --csv")
    settings = load_settings(ingest_processes=processes)
    options = AuditOptions(min_overlap, settings.ingest_processes, settings.max_track_hours * 3600)
    console = Console(stderr=True)
    try:
        if quiet or not console.is_terminal:  # no bar (a disabled rich bar still writes a newline)
            report = _audit(paths, db, options, None)
        else:
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=console,
            ) as bar:  # fmt: skip
                tasks: dict[str, TaskID] = {}

                def advance(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=total)
                    bar.update(tasks[stage], completed=done)

                report = _audit(paths, db, options, advance)
    except NothingToAuditError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json_flag:
        click.echo(as_json(report))
    elif as_csv_flag:
        click.echo(as_csv(report), nl=False)
    else:
        click.echo(as_text(report))
    if as_json_flag or as_csv_flag:
        for path, reason in report.failures:
            click.echo(f"could not read {path}: {reason}", err=True)


def _audit(paths: tuple[Path, ...], db: Path | None, options: AuditOptions, progress: ProgressFn | None) -> AuditReport:
    if db is not None:
        with open_store(db) as store:
            return audit_store(store, options, progress)
    return audit_folder(paths, FingerprintParams(), options, progress)
