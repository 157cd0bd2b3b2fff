"""soundmark report: airplay over a range of days, from the store's play log (services/reports.py).

Prints a summary (totals, stations, top tracks); ``--csv`` writes the play log, ``--tracks-csv``
the per-track summary, ``--pdf`` the report with its chart, ``--json`` prints the report as the
HTTP API answers it. A bad date, an empty range or one longer than a year is a usage error (exit 2).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soundmark.cli.common import db_option, load_settings
from soundmark.services.errors import ServiceError

if TYPE_CHECKING:  # imported at run time inside the command (start-up stays quick)
    from soundmark.services.reports import Report, ReportRange

_out = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.command("report")
@db_option
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD", help="First day of the report (included).")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD",
              help="Day the report stops at (excluded: November is --from 2026-11-01 --to 2026-12-01).")  # fmt: skip
@click.option("--radio-id", type=int, default=None, help="Only this station (the radio_id of its stream).")
@click.option("--tz", default="UTC", show_default=True,
              help="Zone the days are counted in: an IANA name (Europe/Berlin) or an offset (+03:00).")  # fmt: skip
@click.option("--csv", "csv_out", type=_out, default=None, help="Write the play log (one row per play) as CSV here.")
@click.option("--tracks-csv", type=_out, default=None, help="Write the per-track summary (plays, play time) as CSV.")
@click.option("--pdf", "pdf_out", type=_out, default=None, help="Write the report as a PDF (chart and tables) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (totals, days, stations, tracks).")
@click.option("--top", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Tracks in the top-tracks list (the summary, the PDF and the JSON).")  # fmt: skip
def report_command(
    db: Path | None, start: str, end: str, radio_id: int | None, tz: str, csv_out: Path | None,
    tracks_csv: Path | None, pdf_out: Path | None, as_json: bool, top: int,
) -> None:  # fmt: skip
    """Airplay report: plays per station and per track over [--from, --to), plays per day, top
    tracks and total play time, from the songs that `soundmark serve` heard on monitored streams.

    A play counts on the day it started (a song straddling midnight counts once, on its first
    day, with its whole length). Play time adds up each play's length; plays reported as they
    started (callbacks=before) have none and are counted apart.
    """
    from soundmark.catalog.sqlite import CATALOG_FILE
    from soundmark.catalog.writer import LocalDatabase
    from soundmark.services.reports import ReportRange, ReportService

    try:
        rng = ReportRange.parse(start, end, radio_id, tz)
    except ServiceError as exc:
        raise click.UsageError(str(exc)) from None
    settings = load_settings(db=db)
    if not (settings.db / CATALOG_FILE).is_file():
        raise click.ClickException(f"no store at {settings.db} (set --db or SOUNDMARK_DB)")
    database = LocalDatabase(settings.db)
    try:
        service = ReportService(database, settings.callback_timezone)
        report = service.report(rng)
        if csv_out is not None:
            from soundmark.reports.csv_export import write_play_log

            with csv_out.open("w", newline="", encoding="utf-8") as f:
                n = service.each_play(rng, lambda plays: write_play_log(plays, f))
            click.echo(f"play log: {n} plays → {csv_out}", err=True)
        if tracks_csv is not None:
            from soundmark.reports.csv_export import write_track_summary

            with tracks_csv.open("w", newline="", encoding="utf-8") as f:
                n = write_track_summary(report, f)
            click.echo(f"track summary: {n} tracks → {tracks_csv}", err=True)
        if pdf_out is not None:
            from soundmark.reports.pdf import write_pdf

            pages = write_pdf(report, pdf_out, top=top)
            click.echo(f"pdf: {pages} pages → {pdf_out}", err=True)
        if as_json:
            from soundmark.reports.json_export import report_json

            click.echo(json.dumps(report_json(report, top=top, log=[], log_offset=0), ensure_ascii=False, indent=2))
        elif csv_out is None and tracks_csv is None and pdf_out is None:
            _print_summary(report, rng, top)
    finally:
        database.close()


def _print_summary(report: Report, rng: ReportRange, top: int) -> None:
    from rich.console import Console
    from rich.table import Column, Table

    from soundmark.reports.fields import duration

    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 110)
    where = "all stations" if rng.radio_id is None else f"radio {rng.radio_id}"
    console.print(f"Airplay {rng.start} to {rng.end} (excluded), {rng.tz}, {where}", highlight=False)
    line = f"{report.plays} plays, {duration(report.seconds)} play time, {len(report.tracks)} tracks"
    if report.plays_without_length:
        line += f" ({report.plays_without_length} plays without a length)"
    console.print(line, highlight=False)
    stations = Table("station", "url", title="Stations", title_justify="left")
    for name in ("plays", "play time", "tracks"):
        stations.add_column(name, justify="right")
    for s in report.stations:
        stations.add_row(s.name, s.url, str(s.plays), duration(s.seconds), str(len(s.tracks)))
    tracks = Table(Column("#", justify="right"), "artist", "title", "isrc", title="Top tracks", title_justify="left")
    for name in ("plays", "play time"):
        tracks.add_column(name, justify="right")
    for i, t in enumerate(report.top_tracks(top), 1):
        tracks.add_row(str(i), t.artist, t.title, t.isrc, str(t.plays), duration(t.seconds))
    days = [d for d in report.days if d.plays]
    busiest = max(days, key=lambda d: d.plays) if days else None
    if report.stations:
        console.print(stations)
        console.print(tracks)
    if busiest is not None:
        console.print(f"{len(days)} of {len(report.days)} days with plays; busiest {busiest.day}: "
                      f"{busiest.plays} plays", highlight=False)  # fmt: skip
