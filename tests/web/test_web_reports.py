"""The Reports page in Chromium against a real server whose stations played tests/reports' PLAYS
(recorded through the monitor's event path): the per-station and per-track counts, the chart
(a PNG the server draws: decoded, its bars counted), the CSV and PDF exports of the range, a bad
range's message, and the login redirect of a visitor."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import Console, WebServer, chromium, log_in, screenshots, start_server, stop_server, wait_until
from PIL import Image
from playwright.sync_api import Page, Playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reports"))  # airplay: PLAYS and their report

from airplay import (
    EXPECTED_PLAYS,
    EXPECTED_SECONDS,
    EXPECTED_STATIONS,
    EXPECTED_TRACKS,
    describe_tracks,
    record_plays,
)

from soundmark.catalog.models import Track
from soundmark.reports.chart import BAR_COLOR
from soundmark.reports.fields import duration

NOVEMBER = "from=2026-11-01&to=2026-11-04"
DAYS_PLAYED = 3  # 11-01 (3 plays), 11-02 (2), 11-03 (2)


@pytest.fixture(scope="module")
def aired(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebServer, list[Track]]]:
    """A server (API role: nothing monitors the example stations) on a demo catalog copy whose
    radios 1 and 2 played PLAYS."""
    root = tmp_path_factory.mktemp("web-reports")
    db = root / "db"
    shutil.copytree(demo[0], db)
    tracks = describe_tracks(db)
    # In a thread of its own: Playwright's event loop may already run in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(record_plays, db, [t.id for t in tracks]).result()
    server = start_server(db, root / "server.log", "--role", "api")
    try:
        yield server, tracks
    finally:
        stop_server(server)


def _login(page: Page, web: WebServer, token: str) -> None:
    log_in(page, web.url, token, "/reports")


def _cells(page: Page, table: str, column: int) -> list[str]:
    return [t.strip() for t in page.locator(f"#{table} tbody tr td:nth-child({column})").all_inner_texts()]


def _bar_runs(png: bytes) -> list[int]:
    """The chart's bars, left to right: the height in pixels of each run of bar-coloured columns."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    bar = np.array([int(BAR_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    is_bar = np.abs(pixels - bar).sum(axis=2) < 30
    heights = is_bar.sum(axis=0)
    runs: list[int] = []
    inside = False
    for h in heights:
        if h and not inside:
            runs.append(0)
        if h:
            runs[-1] = max(runs[-1], int(h))
        inside = bool(h)
    return runs


def test_reports_page_shows_the_range_and_exports_it(
    pw: Playwright, aired: tuple[WebServer, list[Track]], tmp_path: Path
) -> None:
    web, tracks = aired
    token = web.token("reports-admin", "admin")
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        _login(page, web, token)
        # Without a range: the last 30 days, today (UTC) included.
        today = datetime.now(UTC).date()
        expect(page.locator("#from")).to_have_value((today - timedelta(days=29)).isoformat())
        expect(page.locator("#to")).to_have_value((today + timedelta(days=1)).isoformat())

        page.fill("#from", "2026-11-01")
        page.fill("#to", "2026-11-04")
        page.click("#range-form button[type=submit]")
        expect(page).to_have_url(web.url + "/reports?" + NOVEMBER + "&radio_id=")
        expect(page.locator("#total-plays")).to_have_text(str(EXPECTED_PLAYS))
        expect(page.locator("#total-time")).to_have_text(duration(EXPECTED_SECONDS))

        # Plays per station and per track: the counts worked out by hand in tests/reports/airplay.py.
        stations = dict(zip(_cells(page, "stations", 2), _cells(page, "stations", 4), strict=True))
        assert stations == {str(r): str(plays) for r, (plays, _, _) in EXPECTED_STATIONS.items()}
        titles, plays = _cells(page, "tracks", 2), _cells(page, "tracks", 4)
        assert list(zip(titles, plays, strict=True)) == [(tracks[i].meta.title, str(n)) for i, n, _ in EXPECTED_TRACKS]
        assert [t.strip() for t in page.locator("#top-tracks li .title").all_inner_texts()] == titles

        # The chart: loaded in the page, and a PNG with one bar per day that had plays.
        chart = page.locator("#chart")
        expect(chart).to_be_visible()
        wait_until(page, "document.getElementById('chart').complete")
        assert page.evaluate("document.getElementById('chart').naturalWidth") > 0
        png = page.request.get(web.url + chart.get_attribute("src"))  # type: ignore[operator]
        assert png.status == 200 and png.headers["content-type"] == "image/png"
        grey = np.asarray(Image.open(io.BytesIO(png.body())).convert("L"))
        assert grey.std() > 5, "the chart is blank"
        runs = _bar_runs(png.body())
        assert len(runs) == DAYS_PLAYED, runs
        assert runs[0] > runs[1] and abs(runs[1] - runs[2]) <= 1  # 3 plays, then 2 and 2

        # The exports of the same range: the play log and the track summary as CSV, the PDF.
        log = page.request.get(web.url + page.locator("#export-plays").get_attribute("href"))  # type: ignore[operator]
        assert log.status == 200 and log.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(log.text())))
        assert len(rows) == EXPECTED_PLAYS
        assert Counter(r["radio_id"] for r in rows) == {str(r): n for r, (n, _, _) in EXPECTED_STATIONS.items()}
        summary = page.request.get(web.url + page.locator("#export-tracks").get_attribute("href"))  # type: ignore[operator]
        per_track = [(r["title"], r["plays"]) for r in csv.DictReader(io.StringIO(summary.text()))]
        assert per_track == list(zip(titles, plays, strict=True))
        pdf = page.request.get(web.url + page.locator("#export-pdf").get_attribute("href"))  # type: ignore[operator]
        assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
        (tmp_path / "report.pdf").write_bytes(pdf.body())
        subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(tmp_path / "report.pdf"),
                        str(tmp_path / "page")], check=True)  # fmt: skip
        first = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"))
        assert first.std() > 5, "the PDF's first page renders blank"
        screenshots(page, "reports")

        # One station only.
        page.goto(web.url + "/reports?" + NOVEMBER + "&radio_id=2")
        assert _cells(page, "stations", 2) == ["2"]
        expect(page.locator("#total-plays")).to_have_text(str(EXPECTED_STATIONS[2][0]))
    assert not console.csp_violations(), console.lines


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01&to=2026-11-04", "`from` must be a date as YYYY-MM-DD"),
        ("from=2026-11-04&to=2026-11-01", "must be after `from`"),
        ("from=2020-01-01&to=2026-11-04", "a report covers at most 366"),
        ("from=2026-11-01&to=", "Give both dates"),
        ("from=2026-11-01&to=2026-11-04&radio_id=two", "`radio_id` must be a whole number"),
    ],
)
def test_a_bad_range_shows_what_is_wrong(
    pw: Playwright, aired: tuple[WebServer, list[Track]], query: str, message: str
) -> None:
    web, _ = aired
    token = web.token("reports-range", "admin")
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, web, token)
        answer = page.goto(web.url + "/reports?" + query)
        assert answer is not None and answer.status == 400
        expect(page.locator("#range-error")).to_contain_text(message)
        expect(page.locator("#stations")).to_have_count(0)
        refused = page.request.get(web.url + "/reports/plays.csv?" + query)
        assert refused.status == 400 and message.replace("`", "") in refused.text().replace("`", "")


def test_reports_need_an_admin(pw: Playwright, aired: tuple[WebServer, list[Track]]) -> None:
    web, _ = aired
    with chromium(pw) as browser:
        page = browser.new_page()
        page.goto(web.url + "/reports?" + NOVEMBER)
        expect(page).to_have_url(web.url + "/login?next=/reports")
    for path in ("/reports", "/reports/chart.png", "/reports/plays.csv", "/reports/tracks.csv", "/reports/report.pdf"):
        answer = httpx.get(web.url + path + "?" + NOVEMBER)
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/reports", path
