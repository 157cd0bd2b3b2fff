"""The Stations page (``/streams``) end to end, on loopback only: a real ``soundmark serve`` with its
monitor, a real Icecast 2 fed at real-time pace, real Chromium. The admin adds the stream through
the page's form; a catalog song played into Icecast shows as now playing without a reload (the
live updates), lands in the page's last plays and in today's ``/reports.csv``; the stream is
removed through the page. The live updates are bounded (a cap on open event streams) and end
with the session; forms without the CSRF token are refused."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import Console, WebServer, chromium, http_log_in, log_in, screenshots
from live_server import start_server, stop_server
from playwright.sync_api import Page, Playwright, expect

from soundmark.web.stations import MAX_EVENT_STREAMS
from support import Piece, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "streams"))
from radio import ICECAST, RATE, Icecast, IcecastSource, Item, Schedule

pytestmark = pytest.mark.skipif(ICECAST is None, reason="icecast2 is not installed (apt-get install icecast2)")

ENV = {
    "SOUNDMARK_STREAM_WINDOW_SECONDS": "8", "SOUNDMARK_STREAM_HOP_SECONDS": "4",
    "SOUNDMARK_STREAM_SONG_GAP_SECONDS": "8", "SOUNDMARK_STREAM_RECONNECT_MAX_SECONDS": "1",
    "SOUNDMARK_STREAM_READ_TIMEOUT": "5", "SOUNDMARK_STREAM_SYNC_SECONDS": "1",
}  # fmt: skip
RADIO_ID = 4


@pytest.fixture(scope="module")
def stations_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A server of its own (it monitors streams) on a copy of the test catalog."""
    root = tmp_path_factory.mktemp("stations")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--allow-private-urls", env=ENV)
    server = WebServer(s.url, s.db, s.log, s.proc)
    yield server
    stop_server(s)


def _login(page: Page, web: WebServer, token: str) -> None:
    log_in(page, web.url, token, "/streams")
    expect(page.locator("h1")).to_have_text("Stations")


def _http_login(client: httpx.Client, web: WebServer, token: str) -> None:
    http_log_in(client, web.url, token, "/streams")


def _page_csrf(client: httpx.Client, web: WebServer) -> str:
    found = re.search(r'data-csrf="([^"]+)"', client.get(web.url + "/streams").text)
    assert found is not None
    return found.group(1)


def test_a_song_on_a_stream_added_in_the_page_plays_live_and_is_reported(
    pw: Playwright, stations_server: WebServer, pieces: list[Piece], tmp_path: Path
) -> None:
    web = stations_server
    token = web.token("stations-admin", "admin,streams")
    piece = pieces[1]
    quiet = np.zeros(45 * RATE, dtype=np.float32)  # longer than the song gap: the song ends, the stream stays up
    schedule = Schedule([Item("", quiet[: 2 * RATE]), Item(piece.title, piece.samples), Item("", quiet)])
    icecast = Icecast(tmp_path / "icecast")
    icecast.start()
    source = IcecastSource(icecast.port, "/radio.mp3", schedule)
    console = Console()
    try:
        source.start()
        assert source.connected.wait(10), "the source did not connect to Icecast"
        with chromium(pw) as browser:
            page = console.watch(browser.new_page())
            _login(page, web, token)
            expect(page.locator("#stations tr.empty")).to_be_visible()
            # The token is asked once (its md5 names the longpoll categories); it is not stored.
            page.fill("#radio-id", str(RADIO_ID))
            page.fill("#stream-url", f"{icecast.url}/radio.mp3")
            page.fill("#stream-token", token)
            page.click("#add-form button[type=submit]")
            expect(page.locator("#stations-ok")).to_contain_text("Stream added")
            row = page.locator(f'#stations tr[data-radio="{RADIO_ID}"]')
            expect(row).to_be_visible()
            expect(page.locator("#live")).to_have_attribute("data-state", "on")
            page.evaluate("window.stationsMarker = 'not reloaded'")
            # Live: the song shows as now playing, the stream as connected, without a reload.
            expect(row.locator(".now-title")).to_have_text(piece.title, timeout=60_000)
            expect(row).to_have_attribute("data-state", "connected")
            expect(row.locator(".badge")).to_have_text("connected")
            assert row.locator(".audio").inner_text().strip() != "–"
            expect(row.locator(".reconnects")).to_have_text("0 reconnects")
            screenshots(page, "stations-playing")
            # The song ends (silence for longer than the gap): it is in the last plays.
            expect(page.locator("#plays tbody tr .title", has_text=piece.title)).to_be_visible(timeout=60_000)
            expect(row.locator(".now-title")).to_have_count(0)
            assert page.evaluate("window.stationsMarker") == "not reloaded"
            screenshots(page, "stations")
            # Today's report lists the play, as CSV.
            today = datetime.now(UTC).date()
            params = {"from": str(today), "to": str(today + timedelta(days=1)), "api_token": token}
            answer = httpx.get(web.url + "/reports.csv", params=params, timeout=30)
            assert answer.status_code == 200, answer.text
            rows = list(csv.DictReader(io.StringIO(answer.text)))
            played = [r for r in rows if r["title"] == piece.title]
            assert played and played[0]["radio_id"] == str(RADIO_ID), rows
            # Removed through the page: gone from the page and from the monitor.
            row.locator("button", has_text="Remove").click()
            expect(page.locator("#stations-ok")).to_have_text("Stream removed.")
            expect(page.locator(f'#stations tr[data-radio="{RADIO_ID}"]')).to_have_count(0)
            listed = web.cli("stream", "list")
            assert f"{icecast.url}/radio.mp3" not in listed, listed
    finally:
        source.close()
        icecast.kill()
    assert not console.csp_violations(), console.lines


def test_forms_without_the_csrf_token_are_refused(pw: Playwright, stations_server: WebServer) -> None:
    web = stations_server
    token = web.token("stations-csrf", "admin")
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, web, token)
        form = {"radio_id": "9", "url": "http://127.0.0.1:9/x.mp3", "token": token}
        refused = page.request.post(web.url + "/streams", form=form)
        assert refused.status == 403 and "security check" in refused.text()
        wrong = page.request.post(web.url + "/streams", form={**form, "csrf": "not-the-token"})
        assert wrong.status == 403
        removal = page.request.post(web.url + "/streams/remove", form={"token_id": "1", "radio_id": "9"})
        assert removal.status == 403
        page.goto(web.url + "/streams")
        expect(page.locator('#stations tr[data-radio="9"]')).to_have_count(0)


def test_bad_input_gets_an_error_on_the_page(stations_server: WebServer) -> None:
    web = stations_server
    token = web.token("stations-bad", "admin")
    with httpx.Client(timeout=30) as client:
        _http_login(client, web, token)
        csrf = _page_csrf(client, web)
        cases = [
            ({"radio_id": "x", "url": "http://127.0.0.1:9/a.mp3", "token": token}, "radio id must be a whole number"),
            ({"radio_id": "1", "url": "", "token": token}, "`url` parameter is required"),
            ({"radio_id": "1", "url": "http://127.0.0.1:9/a.mp3"}, "enter your API token once"),
            ({"radio_id": "1", "url": "http://127.0.0.1:9/a.mp3", "token": "nope"}, "unknown or revoked"),
        ]
        for fields, text in cases:
            answer = client.post(web.url + "/streams", data={"csrf": csrf, **fields})
            assert answer.status_code == 400 and text in answer.text, (fields, answer.text[-400:])
        gone = client.post(web.url + "/streams/remove", data={"csrf": csrf, "token_id": "1", "radio_id": "77"})
        assert gone.status_code == 400 and "no stream with radio_id 77" in gone.text


def _first_event(lines: Iterator[str]) -> str:
    for line in lines:
        if line.startswith("event: "):
            return line.removeprefix("event: ")
    raise AssertionError("the event stream ended without an event")


def test_live_updates_are_capped_and_end_with_the_session(stations_server: WebServer) -> None:
    web = stations_server
    token = web.token("stations-live", "admin")
    events = web.url + "/streams/events"
    assert httpx.get(events).status_code == 401  # no session, no events
    with httpx.Client(timeout=30) as client:
        _http_login(client, web, token)
        with contextlib.ExitStack() as open_streams:
            for _ in range(MAX_EVENT_STREAMS):
                answer = open_streams.enter_context(client.stream("GET", events))
                assert answer.status_code == 200
                assert answer.headers["content-type"].startswith("text/event-stream")
            over = client.get(events)
            assert over.status_code == 503 and over.headers["retry-after"]

        def reopens() -> bool:  # the places are given back once those browsers have gone
            with client.stream("GET", events) as answer:
                return answer.status_code == 200

        wait_for("a place for a new event stream", reopens, timeout=30)
        with client.stream("GET", events) as answer:
            lines = answer.iter_lines()
            assert _first_event(lines) == "stations"
            assert client.post(web.url + "/logout", data={"csrf": _page_csrf(client, web)}).status_code == 303
            assert _first_event(lines) == "end"  # the session is over: so are its live updates
