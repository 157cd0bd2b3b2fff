"""The exports of a real report: the CSVs parse and add up to the report, the PDF is a real PDF
(poppler's pdftoppm renders its first page, chart included), the JSON carries the same numbers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from airplay import EXPECTED_DAYS, EXPECTED_PLAYS, EXPECTED_SECONDS, EXPECTED_TRACKS, PLAYS, Airplay
from PIL import Image

from soundmark.catalog.writer import LocalDatabase
from soundmark.reports.chart import BAR_COLOR
from soundmark.reports.csv_export import write_play_log, write_track_summary
from soundmark.reports.fields import PLAY_COLUMNS, TRACK_COLUMNS, duration
from soundmark.reports.json_export import report_json
from soundmark.reports.pdf import ROWS_PER_PAGE, write_pdf
from soundmark.services.reports import Play, Report, ReportRange, ReportService, summarize

RANGE = ReportRange.parse("2026-11-01", "2026-11-04")


def _report(db: Path) -> tuple[Report, list[Play]]:
    database = LocalDatabase(db)
    try:
        service = ReportService(database, "+03:00")
        return service.report(RANGE), service.plays(RANGE)
    finally:
        database.close()


def test_play_log_csv_round_trips(airplay: Airplay) -> None:
    report, plays = _report(airplay.db)
    out = io.StringIO()
    assert write_play_log(plays, out) == EXPECTED_PLAYS
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == PLAY_COLUMNS
    assert len(rows) == report.plays
    assert sum(int(r["play_length"] or 0) for r in rows) == EXPECTED_SECONDS
    assert [r["play_length"] for r in rows].count("") == 1  # the callbacks=before play
    in_range = [p for p in PLAYS if "2026-11-01" <= p[2] < "2026-11-04"]
    starts = [datetime.fromisoformat(r["start"]) for r in rows]
    assert starts == [datetime.fromisoformat(p[2]).replace(tzinfo=UTC) for p in in_range]
    assert [int(r["radio_id"]) for r in rows] == [p[0] for p in in_range]
    ids = [t.id for t in airplay.tracks]
    assert [int(r["track_id"]) for r in rows] == [ids[p[1]] for p in in_range]
    assert rows[0]["isrc"] == "USRC17607839" and rows[0]["label"] == "Label One"
    assert all(0 < int(r["score"]) <= 100 for r in rows)


def test_track_summary_csv_round_trips(airplay: Airplay) -> None:
    report, _ = _report(airplay.db)
    out = io.StringIO()
    assert write_track_summary(report, out) == 3
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == TRACK_COLUMNS
    ids = [t.id for t in airplay.tracks]
    got = [(int(r["track_id"]), int(r["plays"]), int(r["play_seconds"])) for r in rows]
    assert got == [(ids[i], n, s) for i, n, s in EXPECTED_TRACKS]
    assert sum(int(r["plays"]) for r in rows) == report.plays
    assert rows[0]["external_ids"] == "musicbrainz_recording_id=mbid-one"
    assert rows[1]["upc"] == "012345678905"


def test_json_carries_the_report(airplay: Airplay) -> None:
    report, plays = _report(airplay.db)
    body: Any = json.loads(json.dumps(report_json(report, top=2, log=plays[1:3], log_offset=1)))
    assert (body["plays"], body["play_seconds"], body["plays_without_length"]) == (EXPECTED_PLAYS, EXPECTED_SECONDS, 1)
    assert (body["from"], body["to"], body["to_excluded"], body["tz"]) == ("2026-11-01", "2026-11-04", True, "UTC")
    assert {d["day"]: (d["plays"], d["play_seconds"]) for d in body["days"]} == EXPECTED_DAYS
    assert [t["plays"] for t in body["top_tracks"]] == [3, 2]
    assert {s["radio_id"]: s["plays"] for s in body["stations"]} == {1: 4, 2: 3}
    log = body["log"]
    assert (log["offset"], log["count"], log["total"]) == (1, 2, EXPECTED_PLAYS)
    assert [p["start"] for p in log["plays"]] == ["2026-11-01T11:00:00+00:00", "2026-11-01T12:00:00+00:00"]


def _render(pdf: Path, tmp_path: Path) -> np.ndarray:
    """Page 1 of ``pdf`` as an RGB array, rendered by poppler's pdftoppm."""
    assert shutil.which("pdftoppm"), "pdftoppm is missing: install Debian's poppler-utils (.ci/run does)"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    (png,) = tmp_path.glob("page*.png")
    return np.asarray(Image.open(png).convert("RGB"))


def _pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def test_pdf_renders_with_its_chart(airplay: Airplay, tmp_path: Path) -> None:
    report, _ = _report(airplay.db)
    pdf = tmp_path / "report.pdf"
    pages = write_pdf(report, pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert pages == _pages(pdf) == 2  # the first page, then the stations
    page = _render(pdf, tmp_path)
    assert page.shape[0] > 600 and page.shape[1] > 400
    ink = (page < 200).any(axis=2).mean()
    assert 0.01 < ink < 0.5, f"page 1 is blank or black ({ink:.3f} of it inked)"
    bar = np.array([int(BAR_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(page.astype(int) - bar).sum(axis=2) < 30).sum() > 100, "no bars of the chart on page 1"


def test_a_long_report_continues_over_pages(tmp_path: Path) -> None:
    """300 tracks on 40 stations: the top tracks and the stations tables run over pages."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    plays = [
        Play(1, 1 + i % 40, start + timedelta(minutes=7 * i), 200, i % 300, f"Title {i % 300}", f"Artist {i % 17}",
             "", "", "", "", None, 90)
        for i in range(1200)
    ]  # fmt: skip
    report = summarize(plays, ReportRange.parse("2026-11-01", "2026-11-08"))
    assert report.plays == 1200 and len(report.tracks) == 300
    pdf = tmp_path / "long.pdf"
    pages = write_pdf(report, pdf, top=300)
    tables = -(-(300 - 10) // ROWS_PER_PAGE) + -(-40 // ROWS_PER_PAGE)
    assert pages == _pages(pdf) == 1 + tables
    assert (_render(pdf, tmp_path) < 200).any(axis=2).mean() > 0.01


def test_an_empty_report_is_still_a_document(tmp_path: Path) -> None:
    report = summarize([], RANGE)
    pdf = tmp_path / "empty.pdf"
    assert write_pdf(report, pdf) == _pages(pdf) == 2
    assert (_render(pdf, tmp_path) < 200).any(axis=2).mean() > 0.005


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00:00"), (59, "0:00:59"), (3661, "1:01:01"), (31_536_000, "8760:00:00")]
)
def test_durations(seconds: int, text: str) -> None:
    assert duration(seconds) == text
