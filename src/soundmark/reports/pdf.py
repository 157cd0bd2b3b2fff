"""The report as a PDF: a first page with the range, the totals and a chart of plays per day,
then the top tracks and the stations as tables, continued over as many A4 pages as they need.
The chart is ``chart.py``'s, the one the web app's Reports page shows.

Drawn with matplotlib's object API (``Figure`` + the PDF backend's ``PdfPages``): no pyplot, so
no process-wide backend or figure registry is touched, and nothing needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from soundmark.reports.chart import draw_plays_per_day
from soundmark.reports.fields import duration, external_ids
from soundmark.services.reports import Report

A4 = (8.27, 11.69)  # inches, portrait
ROWS_PER_PAGE = 38  # table rows on a continuation page
FIRST_PAGE_TRACKS = 10  # top tracks on the first page, under the chart
CELL_CHARS = 34  # longer cell texts are cut with an ellipsis


def write_pdf(report: Report, out: str | Path | BinaryIO, *, top: int = 100, generated: datetime | None = None) -> int:
    """Write the report (its ``top`` tracks) to ``out``; returns the number of pages."""
    tracks = [
        [str(i + 1), t.artist, t.title, t.isrc or external_ids(t), str(t.plays), duration(t.seconds)]
        for i, t in enumerate(report.top_tracks(top))
    ]
    stations = [[s.name, s.url, str(s.plays), duration(s.seconds), str(len(s.tracks))] for s in report.stations]
    track_head = ["#", "Artist", "Title", "ISRC / ids", "Plays", "Play time"]
    station_head = ["Station", "URL", "Plays", "Play time", "Tracks"]
    with PdfPages(out, metadata={"Title": _title(report), "Creator": "soundmark"}) as pdf:
        first = _first_page(report, track_head, tracks[:FIRST_PAGE_TRACKS], generated)
        pdf.savefig(first)
        pages = 1
        rest = tracks[FIRST_PAGE_TRACKS:]
        for i in range(0, len(rest), ROWS_PER_PAGE):
            pdf.savefig(_table_page("Top tracks (continued)", track_head, rest[i : i + ROWS_PER_PAGE]))
            pages += 1
        for i in range(0, max(1, len(stations)), ROWS_PER_PAGE):
            title = "Stations" if i == 0 else "Stations (continued)"
            pdf.savefig(_table_page(title, station_head, stations[i : i + ROWS_PER_PAGE]))
            pages += 1
    return pages


def _title(report: Report) -> str:
    rng = report.range
    where = "all stations" if rng.radio_id is None else f"radio {rng.radio_id}"
    return f"Airplay report {rng.start.isoformat()} to {rng.end.isoformat()} ({where})"


def _first_page(report: Report, head: list[str], rows: list[list[str]], generated: datetime | None) -> Figure:
    rng = report.range
    fig = Figure(figsize=A4)
    fig.text(0.07, 0.95, "Airplay report", fontsize=20, weight="bold")
    where = "all stations" if rng.radio_id is None else f"radio {rng.radio_id}"
    fig.text(0.07, 0.925, f"{rng.start.isoformat()} to {rng.end.isoformat()} (excluded), {rng.tz}, {where}",
             fontsize=11)  # fmt: skip
    totals = [
        ("Plays", str(report.plays)),
        ("Play time", duration(report.seconds)),
        ("Tracks played", str(len(report.tracks))),
        ("Stations", str(len(report.stations))),
    ]
    if report.plays_without_length:
        totals.append(("Plays without a length", str(report.plays_without_length)))
    for i, (name, value) in enumerate(totals):
        x = 0.07 + (i % 3) * 0.3
        y = 0.885 - (i // 3) * 0.03
        fig.text(x, y, f"{name}: {value}", fontsize=11)
    draw_plays_per_day(fig.add_axes((0.1, 0.55, 0.84, 0.27)), report)
    fig.text(0.07, 0.47, "Top tracks", fontsize=13, weight="bold")
    _table(fig, (0.07, 0.47 - 0.022 * (len(rows) + 1) - 0.01, 0.86, 0.022 * (len(rows) + 1)), head, rows)
    if not rows:
        fig.text(0.07, 0.44, "No plays in this range.", fontsize=11, color="#555555")
    stamp = (generated or datetime.now().astimezone()).isoformat(timespec="seconds")
    fig.text(0.07, 0.03, f"soundmark · generated {stamp}", fontsize=8, color="#777777")
    return fig


def _table_page(title: str, head: list[str], rows: list[list[str]]) -> Figure:
    fig = Figure(figsize=A4)
    fig.text(0.07, 0.95, title, fontsize=14, weight="bold")
    if rows:
        height = 0.022 * (len(rows) + 1)
        _table(fig, (0.07, 0.93 - height, 0.86, height), head, rows)
    else:
        fig.text(0.07, 0.91, "None in this range.", fontsize=11, color="#555555")
    return fig


def _table(fig: Figure, box: tuple[float, float, float, float], head: list[str], rows: Sequence[list[str]]) -> None:
    if not rows:
        return
    ax = fig.add_axes(box)
    ax.axis("off")
    cells = [[_cut(v) for v in row] for row in rows]
    table = ax.table(
        cellText=cells, colLabels=head, loc="upper left", cellLoc="left", bbox=Bbox.from_bounds(0, 0, 1, 1)
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7.5)
    table.auto_set_column_width(list(range(len(head))))
    for (r, _c), cell in table.get_celld().items():
        cell.set_linewidth(0.3)
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8eef6")


def _cut(text: str) -> str:
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"
