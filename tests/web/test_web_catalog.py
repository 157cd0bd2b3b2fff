"""The Catalog pages in Chromium against a real server on a copy of the demo catalog: search by
title, artist, ISRC and a line of the lyrics, browse pages, a track's page with where it was
heard (plays recorded through the stream monitor's event sink before the server starts), an
admin's edit (the API then answers the new title), CSRF refusals, removal (the clip is no longer
recognised) and the duplicates report (the same recording uploaded again to the custom catalog)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from browser import Console, WebServer, chromium, screenshots, start_server, stop_server
from playwright.sync_api import Page, Playwright, expect
from scipy.io import wavfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reports"))  # airplay: plays as the monitor writes them

from airplay import record_plays

from soundmark.demo import write_wav
from soundmark.web.session import SESSION_COOKIE

LYRICS = "Under the sodium lamps we hum along\nuntil the resonance carries us home\n"
NEW_ISRC = "GBXYZ2600042"
EDITED_TITLE = "Transform <Tonight> & Co"  # escaped on the page, returned as it is by the API
UPLOAD_ID = 77  # the custom-catalog slot the duplicate is uploaded to


@dataclass
class CatalogSite:
    web: WebServer
    ids: dict[str, int]  # demo title -> track id
    copy_id: int  # the uploaded duplicate of "Phase Locked Heart"
    clip: Path  # the demo clip (Transform Tonight, noisy)
    pluck_clip: Path  # 20 s of Plucked String Theory (the track the removal test removes)
    admin: str  # an admin token


def _wav(path: Path) -> tuple[int, np.ndarray]:
    rate, data = wavfile.read(path)
    x = data.astype(np.float32) / 32768.0 if data.dtype == np.int16 else data.astype(np.float32)
    return rate, x.mean(axis=1) if x.ndim > 1 else x


def _recognize(site: CatalogSite, clip: Path) -> dict[str, object] | None:
    with clip.open("rb") as fh:
        body = httpx.post(site.web.url + "/", files={"file": fh}, timeout=60).json()
    assert body["status"] == "success", body
    result: dict[str, object] | None = body["result"]
    return result


@pytest.fixture(scope="module")
def site(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSite]:
    root = tmp_path_factory.mktemp("web-catalog")
    db = root / "db"
    shutil.copytree(demo[0], db)
    run = WebServer("", db, root / "cli.log", None)  # type: ignore[arg-type]  # its cli() only
    ids = {t["title"]: int(t["id"]) for t in map(json.loads, run.cli("list", "--json").splitlines())}
    # Lyrics and an ISRC set through the real CLI before the server starts.
    (root / "lyrics.txt").write_text(LYRICS)
    run.cli("meta", "--track-id", str(ids["Cutoff at Midnight"]), "--lyrics-file", str(root / "lyrics.txt"))
    run.cli("meta", "--track-id", str(ids["Overlap and Add"]), "--isrc", NEW_ISRC)
    # Plays: airplay.PLAYS puts its first track on radio 1 four times and on radio 2 once.
    # (In a thread of its own: Playwright's sync API holds an event loop in this one.)
    with ThreadPoolExecutor(1) as thread:
        thread.submit(
            record_plays, db, [ids["Transform Tonight"], ids["One Over F"], ids["Fold Me Back Down"]]
        ).result()
    rate, pluck = _wav(next((demo[1] / "tracks").glob("08-*.wav")))
    pluck_clip = root / "pluck-clip.wav"
    write_wav(pluck_clip, pluck[10 * rate : 30 * rate], rate)
    server = start_server(db, root / "server.log", "--role", "api", "--anonymous-per-day", "1000")
    try:
        # The same recording again, 6 dB quieter, into the custom catalog (AudD's upload stores
        # what it is given; `soundmark add` would have skipped it as a duplicate).
        rate, first = _wav(next((demo[1] / "tracks").glob("01-*.wav")))
        quiet = root / "quiet-copy.wav"
        write_wav(quiet, (0.5 * first).astype(np.float32), rate)
        uploader = server.token("uploader", "catalog:write")
        with quiet.open("rb") as fh:
            data = {"method": "upload", "audio_id": str(UPLOAD_ID), "api_token": uploader}
            answer = httpx.post(server.url + "/", data=data, files={"file": fh}, timeout=120).json()
        assert answer["status"] == "success", answer
        listed = [json.loads(line) for line in server.cli("list", "--json").splitlines()]
        copy_id = max(int(t["id"]) for t in listed)
        server.cli("meta", "--track-id", str(copy_id), "--title", "Phase Locked Heart (quiet copy)")
        yield CatalogSite(
            server, ids, copy_id, demo[1] / "demo-clip.wav", pluck_clip, server.token("cat-admin", "admin")
        )
    finally:
        stop_server(server)


def _login(page: Page, site: CatalogSite, path: str) -> None:
    page.goto(site.web.url + "/login?next=" + path)
    page.fill("#token", site.admin)
    page.click("#login-submit")
    expect(page).to_have_url(site.web.url + path)


def _search(page: Page, q: str, field: str) -> list[str]:
    page.fill("#q", q)
    page.select_option("#field", field)
    page.click("#search-submit")
    expect(page.locator("#searched")).to_have_text(q)
    return [t.strip() for t in page.locator("#tracks td.title").all_inner_texts()]


def test_search_finds_a_track_by_title_artist_isrc_and_lyrics(pw: Playwright, site: CatalogSite) -> None:
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        page.goto(site.web.url + "/catalog")  # public: no login
        expect(page.locator("h1")).to_have_text("Catalog")
        expect(page.locator("#tracks tbody tr")).to_have_count(9)  # the demo's 8 tracks and the uploaded copy
        screenshots(page, "catalog")
        assert _search(page, "transform tonight", "title") == ["Transform Tonight"]
        assert _search(page, "Karplus", "artist") == ["Plucked String Theory"]
        assert _search(page, NEW_ISRC.lower(), "isrc") == ["Overlap and Add"]
        assert _search(page, "the resonance carries us home", "lyrics") == ["Cutoff at Midnight"]
        assert _search(page, "resonance carries", "all") == ["Cutoff at Midnight"]
        assert _search(page, "Karplus", "title") == []  # an artist's name is not in any title
        expect(page.locator("#no-tracks")).to_have_text("Nothing found.")
        assert _search(page, 'frequency "domain', "all") == ["Transform Tonight"]  # the album; quotes are text
        bad = httpx.get(site.web.url + "/catalog", params={"field": "genre"}, headers={"Accept": "text/html"})
        assert bad.status_code == 400 and "`field` must be one of" in bad.text
    assert not console.csp_violations(), console.lines


def test_browse_pages_list_every_track_once(pw: Playwright, site: CatalogSite) -> None:
    with chromium(pw) as browser:
        page = browser.new_page()
        page.goto(site.web.url + "/catalog?size=4")
        seen: list[str] = []
        pages = 0
        while True:
            titles = page.locator("#tracks td.title").all_inner_texts()
            assert 1 <= len(titles) <= 4
            seen += titles
            pages += 1
            if not page.locator("#next-page").count():
                break
            page.click("#next-page")
        assert pages >= 3 and len(seen) == len(set(seen))
        assert {*site.ids} <= {t.strip() for t in seen}
        assert [t.lower() for t in seen] == sorted(t.lower() for t in seen)  # by title
        page.click("#prev-page")
        assert page.locator("#tracks td.title").all_inner_texts() == seen[4:8]
        page.click("a.sort-added")
        first = page.locator("#tracks td.title").first.inner_text().strip()
        assert first == "Phase Locked Heart (quiet copy)"  # the newest track


def test_a_track_page_shows_metadata_and_where_it_was_heard(pw: Playwright, site: CatalogSite) -> None:
    path = f"/catalog/tracks/{site.ids['Transform Tonight']}"
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        page.goto(site.web.url + path)
        expect(page.locator("#track-artist")).to_have_text("DJ Fourier")
        expect(page.locator("#track-isrc")).to_have_text("XXSM12100003")
        expect(page.locator("#track-meta")).to_contain_text("Frequency Domain")
        assert not page.locator("#heard").count() and not page.locator("#edit-form").count()  # admin only
        _login(page, site, path)
        rows = page.locator("#heard tbody tr")
        expect(rows).to_have_count(2)
        assert (
            rows.nth(0).locator(".plays").inner_text() == "4" and "radio 1 (station owner)" in rows.nth(0).inner_text()
        )
        assert "http://radio.example/1.mp3" in rows.nth(0).inner_text()
        assert rows.nth(0).locator(".last").inner_text().startswith("2026-11-04")
        assert rows.nth(1).locator(".plays").inner_text() == "1"
        screenshots(page, "track")
        page.goto(site.web.url + f"/catalog/tracks/{site.ids['Cutoff at Midnight']}")
        expect(page.locator("#track-lyrics")).to_contain_text("resonance carries us home")
        expect(page.locator("#never-heard")).to_be_visible()
    assert not console.csp_violations(), console.lines
    missing = httpx.get(site.web.url + "/catalog/tracks/999999", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and "No such track" in missing.text


def test_an_admin_edit_changes_the_title_the_api_returns(pw: Playwright, site: CatalogSite) -> None:
    tid = site.ids["Transform Tonight"]
    path = f"/catalog/tracks/{tid}"
    before = _recognize(site, site.clip)
    assert before is not None and before["title"] == "Transform Tonight"
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, site, path)
        cookies = {SESSION_COOKIE: next(str(c["value"]) for c in browser.cookies() if c["name"] == SESSION_COOKIE)}
        # Without the form's CSRF token (what a cross-site form would send) nothing changes.
        with httpx.Client(base_url=site.web.url, cookies=cookies) as http:
            refused = http.post(path, data={"title": "Hijacked"})
            assert refused.status_code == 403 and "Nothing was changed" in refused.text
            assert http.post(f"{path}/remove", data={"confirm": "yes"}).status_code == 403
        # Anonymous: sent to the login page, nothing changes.
        anonymous = httpx.post(site.web.url + path, data={"title": "Hijacked"})
        assert anonymous.status_code == 303 and anonymous.headers["location"] == f"/login?next={path}"
        page.fill("#edit-title", EDITED_TITLE)
        page.fill("#new-key", "deezer_id")
        page.fill("#new-value", "3135556")
        page.click("#edit-submit")
        expect(page.locator("#saved")).to_have_text("Saved.")
        expect(page.locator("#track-title")).to_have_text(EDITED_TITLE)  # as text, not markup
        expect(page.locator("#external")).to_contain_text("3135556")
        expect(page.locator(".links a", has_text="Deezer")).to_have_attribute(
            "href", "https://www.deezer.com/track/3135556"
        )
    after = _recognize(site, site.clip)
    assert after is not None and after["title"] == EDITED_TITLE and after["artist"] == "DJ Fourier"


def test_removing_a_track_makes_it_disappear_and_unrecognised(pw: Playwright, site: CatalogSite) -> None:
    tid = site.ids["Plucked String Theory"]
    path = f"/catalog/tracks/{tid}"
    found = _recognize(site, site.pluck_clip)
    assert found is not None and found["title"] == "Plucked String Theory"
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, site, path)
        page.click("#remove-submit")  # the box is not ticked: the browser asks for it, nothing is sent
        expect(page).to_have_url(site.web.url + path)
        page.check("#remove-confirm")
        page.click("#remove-submit")
        expect(page.locator("#removed")).to_have_text("Removed Plucked String Theory.")
        assert _search(page, "plucked string", "all") == []
        gone = page.goto(site.web.url + path)
        assert gone is not None and gone.status == 404
    assert _recognize(site, site.pluck_clip) is None


def test_the_duplicates_report_finds_the_uploaded_copy_only(pw: Playwright, site: CatalogSite) -> None:
    anonymous = httpx.get(site.web.url + "/catalog/duplicates")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login?next=/catalog/duplicates"
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        _login(page, site, "/catalog/duplicates")
        cookies = {SESSION_COOKIE: next(str(c["value"]) for c in browser.cookies() if c["name"] == SESSION_COOKIE)}
        assert httpx.post(site.web.url + "/catalog/duplicates", cookies=cookies).status_code == 403
        page.click("#audit-start")
        expect(page.locator("#audit-summary")).to_be_visible(timeout=120_000)  # the page reloads itself meanwhile
        groups = page.locator("article.group")
        expect(groups).to_have_count(1)
        hrefs = sorted(str(a.get_attribute("href")) for a in groups.locator("a.member").all())
        original = site.ids["Phase Locked Heart"]
        assert hrefs == sorted([f"/catalog/tracks/{original}", f"/catalog/tracks/{site.copy_id}"])
        expect(groups.locator("td.kind")).to_have_text("same as")
        screenshots(page, "duplicates")
        page.locator("a.member", has_text="quiet copy").click()
        expect(page.locator("#track-title")).to_have_text("Phase Locked Heart (quiet copy)")
    assert not console.csp_violations(), console.lines


def test_with_require_token_the_catalog_needs_the_login(demo: tuple[Path, Path], tmp_path: Path) -> None:
    db = tmp_path / "db"
    shutil.copytree(demo[0], db)
    server = start_server(db, tmp_path / "server.log", "--role", "api", "--require-token")
    try:
        for path in ("/catalog", "/catalog/tracks/1"):
            answer = httpx.get(server.url + path, headers={"Accept": "text/html"})
            assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
        token = server.token("locked-admin", "admin")
        with httpx.Client(base_url=server.url) as http:
            login = http.get("/login")
            csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            assert http.post("/login", data={"token": token, "csrf": csrf, "next": "/catalog"}).status_code == 303
            assert "Phase Locked Heart" in http.get("/catalog").text
    finally:
        stop_server(server)
