"""The Listen page in Chromium: a fake microphone playing a noisy clip of a catalog track, music
that is in no catalog, a denied microphone, a file upload."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import httpx
from browser import (
    FIRST_TITLE,
    Console,
    WebServer,
    chromium,
    fake_microphone,
    screenshots,
    start_server,
    stop_server,
    wait_until,
)
from playwright.sync_api import Page, Playwright, expect

CARD_TIMEOUT_MS = 15_000  # the brief's "within 15 s" of pressing the button
# The picture's size and how many distinct colours its pixels have (a blank image has one).
DISTINCT_COLOURS = """() => {
  const img = document.getElementById("r-why-picture");
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const seen = new Set();
  for (let i = 0; i < data.length; i += 4 * 7) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  return [canvas.width, canvas.height, seen.size];
}"""


def _press_listen(page: Page, web: WebServer) -> None:
    page.goto(web.url + "/")
    expect(page.locator("h1")).to_have_text("What's playing?")
    page.click("#mic")


def test_microphone_finds_the_track(pw: Playwright, web: WebServer, catalog_clip: Path) -> None:
    console = Console()
    with chromium(pw, *fake_microphone(catalog_clip)) as browser:
        page = console.watch(browser.new_page())
        _press_listen(page, web)
        expect(page.locator("#r-title")).to_have_text(FIRST_TITLE, timeout=CARD_TIMEOUT_MS)
        expect(page.locator("#r-artist")).to_have_text("The Sine Waves")
        expect(page.locator("#r-album")).to_have_text("Constructive Interference")
        assert page.locator("#r-timecode").inner_text().count(":") == 1
        assert float(page.locator("#r-score").inner_text()) > 3
        links = page.locator("#r-links a")
        labels = links.all_inner_texts()
        assert {"Song page", "Spotify", "MusicBrainz"} <= set(labels), labels
        assert page.locator("#r-links a", has_text="Spotify").get_attribute("href") == (
            "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"
        )
        screenshots(page, "listen-match")
    assert not console.csp_violations(), console.lines


def test_unknown_music_is_no_match(pw: Playwright, web: WebServer, unknown_clip: Path) -> None:
    with chromium(pw, *fake_microphone(unknown_clip)) as browser:
        page = browser.new_page()
        _press_listen(page, web)
        status = page.locator("#status")
        expect(status).to_have_attribute("data-kind", "nomatch", timeout=CARD_TIMEOUT_MS)
        expect(status).to_contain_text("No match")
        expect(page.locator("#result")).to_be_hidden()
        screenshots(page, "listen-no-match")


def test_denied_microphone_is_told(pw: Playwright, web: WebServer, catalog_clip: Path) -> None:
    with chromium(pw, *fake_microphone(catalog_clip, allow=False)) as browser:
        page = browser.new_page()
        _press_listen(page, web)
        status = page.locator("#status")
        expect(status).to_have_attribute("data-kind", "denied", timeout=CARD_TIMEOUT_MS)
        expect(status).to_contain_text("Microphone access was denied")
        expect(page.locator("#mic")).to_be_enabled()
        screenshots(page, "listen-denied")


def test_file_upload_finds_the_track(pw: Playwright, web: WebServer, catalog_clip: Path) -> None:
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        page.goto(web.url + "/")
        page.set_input_files("#file", str(catalog_clip))
        expect(page.locator("#r-title")).to_have_text(FIRST_TITLE, timeout=CARD_TIMEOUT_MS)
        screenshots(page, "listen-upload")
        if "/explain" in httpx.get(web.url + "/openapi.json").json()["paths"]:
            # "Why it matched": the same file POSTed to /explain, the picture shown on the card.
            page.click("#r-why-button")
            picture = page.locator("#r-why-picture")
            expect(picture).to_be_visible(timeout=30_000)
            wait_until(page, "document.getElementById('r-why-picture').naturalWidth > 0")
            width, height, colours = page.evaluate(DISTINCT_COLOURS)
            assert width >= 300 and height >= 200 and colours > 20, (width, height, colours)
            screenshots(page, "listen-why")
        else:  # a server without the explain endpoint offers no button
            expect(page.locator("#r-why")).to_be_hidden()
    assert not console.csp_violations(), console.lines


def test_unreadable_file_is_an_error_message(pw: Playwright, web: WebServer, tmp_path: Path) -> None:
    junk = tmp_path / "not-audio.mp3"
    junk.write_bytes(b"this is not audio at all" * 100)
    with chromium(pw) as browser:
        page = browser.new_page()
        page.goto(web.url + "/")
        page.set_input_files("#file", str(junk))
        status = page.locator("#status")
        expect(status).to_have_attribute("data-kind", "error", timeout=CARD_TIMEOUT_MS)
        expect(status).to_contain_text("not a valid or supported audio file")


def test_url_box_then_the_anonymous_quota(
    pw: Playwright, demo: tuple[Path, Path], catalog_clip: Path, tmp_path: Path
) -> None:
    """One recognition a day without a token (the page spends the anonymous quota like any API
    call): an audio URL typed in the box matches, the next upload is refused with AudD's quota
    error, shown as the error message."""
    db = tmp_path / "db"
    shutil.copytree(demo[0], db)
    audio = tmp_path / "files"
    audio.mkdir()
    shutil.copy(catalog_clip, audio / "clip.wav")
    handler = functools.partial(QuietFiles, directory=str(audio))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    server = start_server(db, tmp_path / "server.log", "--anonymous-per-day", "1", "--allow-private-urls")
    try:
        with chromium(pw) as browser:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.fill("#url", f"http://127.0.0.1:{files.server_address[1]}/clip.wav")
            page.click("#url-form button[type=submit]")
            expect(page.locator("#r-title")).to_have_text(FIRST_TITLE, timeout=CARD_TIMEOUT_MS)
            expect(page.locator("#r-why")).to_be_hidden()  # the page never had the URL's audio
            page.set_input_files("#file", str(catalog_clip))
            status = page.locator("#status")
            expect(status).to_have_attribute("data-kind", "error", timeout=CARD_TIMEOUT_MS)
            expect(status).to_contain_text("limit")
            expect(page.locator("#result")).to_be_hidden()
    finally:
        stop_server(server)
        files.shutdown()
        files.server_close()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
