"""The Jobs pages in Chromium against real servers: a mix of three demo tracks is sent to the
enterprise endpoint of an API node (which only queues jobs), the Jobs page shows it queued, then
a jobs node started on the same store runs it and the page's progress bar reaches done without a
reload; the job page lists the tracks in the mix's order and its CSV says the same. The API's
``GET /jobs/<id>`` still answers JSON to every client that is not a browser asking for a page."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import live_server
import numpy as np
import pytest
from browser import Console, WebServer, chromium, log_in, screenshots, start_server, stop_server, wait_until
from long_audio import write_flac
from playwright.sync_api import Page, Playwright, expect
from scipy.io import wavfile

MIX_ORDER = ("04-", "02-", "06-")  # demo track files, in the mix's order (not the catalog's)


@dataclass(frozen=True)
class Mix:
    path: Path
    titles: list[str]  # in the order they play


@pytest.fixture(scope="module")
def mix(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Mix:
    """Three demo tracks back to back (3 minutes), as FLAC."""
    listed = subprocess.run([sys.executable, "-m", "soundmark", "list", "--db", str(demo[0]), "--json"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    by_file = {Path(t["source"]).name: t["title"] for t in map(json.loads, listed.splitlines())}
    parts, titles, rate = [], [], 0
    for prefix in MIX_ORDER:
        wav = next((demo[1] / "tracks").glob(prefix + "*.wav"))
        rate, data = wavfile.read(wav)
        parts.append(data if data.ndim == 1 else data.mean(axis=1).astype(np.int16))
        titles.append(by_file[wav.name])
    path = tmp_path_factory.mktemp("web-mix") / "mix.flac"
    write_flac(path, np.concatenate(parts).astype(np.int16), rate)
    return Mix(path, titles)


@dataclass
class Nodes:
    api: WebServer
    root: Path
    jobs: live_server.Server | None = None

    def start_jobs_node(self) -> None:
        """A ``serve --role jobs`` node on the same store: it picks up the queued jobs."""
        env = {"SOUNDMARK_SCAN_WORKERS": "1"}
        self.jobs = live_server.start_server(self.api.db, self.root / "jobs.log", "--role", "jobs", env=env)


@pytest.fixture(scope="module")
def nodes(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    root = tmp_path_factory.mktemp("web-jobs")
    db = root / "db"
    shutil.copytree(demo[0], db)
    n = Nodes(start_server(db, root / "api.log", "--role", "api"), root)
    try:
        yield n
    finally:
        if n.jobs is not None:
            live_server.stop_server(n.jobs)
        stop_server(n.api)


def _login(page: Page, web: WebServer, token: str) -> None:
    log_in(page, web.url, token, "/jobs")


def _submit(web: WebServer, mix: Mix) -> str:
    token = web.token("mixer", "recognize")
    with mix.path.open("rb") as f:
        answer = httpx.post(web.url + "/enterprise/", data={"api_token": token, "async": "true"},
                            files={"file": ("mix.flac", f, "audio/flac")}, timeout=60)  # fmt: skip
    body = answer.json()
    assert answer.status_code == 200, body
    job_id: str = body.get("result", body)["job_id"]
    return job_id


def test_a_job_runs_to_done_on_the_page_and_lists_its_tracks(pw: Playwright, nodes: Nodes, mix: Mix) -> None:
    web = nodes.api
    job_id = _submit(web, mix)
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        _login(page, web, web.token("jobs-admin", "admin"))
        row = page.locator(f'#jobs tr[data-job-id="{job_id}"]')
        expect(row.locator(".job-status")).to_have_text("queued")  # an API node only queues
        bar = row.locator("progress.job-progress")
        assert bar.evaluate("b => b.value") == 0
        # Every value the bar shows from now on, and a mark a reload would wipe out.
        page.evaluate(
            """id => { window.stillThisPage = true; window.seen = [];
                 const bar = document.querySelector(`tr[data-job-id="${id}"] progress`);
                 window.setInterval(() => window.seen.push(bar.value), 50); }""",
            job_id,
        )
        nodes.start_jobs_node()
        expect(row.locator(".job-status")).to_have_text("done", timeout=180_000)
        expect(row.locator(".job-tracks")).to_have_text(str(len(mix.titles)))
        wait_until(page, "window.seen.length && window.seen[window.seen.length - 1] === 1")
        seen = page.evaluate("window.seen")
        assert seen[0] == 0 and seen[-1] == 1 and seen == sorted(seen), seen
        assert page.evaluate("window.stillThisPage") is True  # no reload
        expect(row.locator(".job-percent")).to_have_text("100 %")
        screenshots(page, "jobs")

        # The job page: the tracks in the order they play, with where and how sure.
        row.locator("a.job-link").click()
        expect(page).to_have_url(f"{web.url}/jobs/{job_id}")
        expect(page.locator(".job-facts .job-status")).to_have_text("done")
        lines = page.locator("#tracklist tbody tr")
        expect(lines).to_have_count(len(mix.titles))
        titles = [t.strip() for t in page.locator("#tracklist td.title").all_inner_texts()]
        spans = [t.strip() for t in page.locator("#tracklist td.span").all_inner_texts()]
        scores = [float(t) for t in page.locator("#tracklist td.score").all_inner_texts()]
        assert titles == mix.titles
        starts = [s.split(" – ")[0] for s in spans]
        assert starts == sorted(starts) and all(score > 0 for score in scores)
        screenshots(page, "job")

        # Its CSV: the same tracks, spans and scores.
        href = page.locator("#tracklist-csv").get_attribute("href")
        assert href == f"/jobs/{job_id}.csv"
        download = page.request.get(web.url + href)
        assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(download.text())))
        assert [r["title"] for r in rows] == titles
        assert [f"{r['start_time']} – {r['end_time']}" for r in rows] == spans
        assert [float(r["score"]) for r in rows] == scores

        # An unknown job: a 404 page (and a 404 for its CSV).
        answer = page.goto(f"{web.url}/jobs/0123456789abcdef01234567")
        assert answer is not None and answer.status == 404
        expect(page.locator("#no-job")).to_have_text("No such job")
        assert page.request.get(f"{web.url}/jobs/0123456789abcdef01234567.csv").status == 404
    assert not console.csp_violations(), console.lines

    # The API's job status at the same URL, for every client that is not a browser's page request.
    answer = httpx.get(f"{web.url}/jobs/{job_id}")
    assert "Accept" in answer.headers["vary"]  # a cache keeps the page and the JSON apart
    api = answer.json()
    assert api["status"] == "success" and api["result"]["status"] == "done"
    assert [t["title"] for t in api["result"]["tracklist"]] == mix.titles


def test_jobs_need_an_admin(pw: Playwright, nodes: Nodes) -> None:
    web = nodes.api
    with chromium(pw) as browser:
        page = browser.new_page()
        page.goto(web.url + "/jobs")
        expect(page).to_have_url(web.url + "/login?next=/jobs")
        page.goto(web.url + "/jobs/0123456789abcdef01234567")
        expect(page).to_have_url(web.url + "/login?next=/jobs")
    assert httpx.get(web.url + "/jobs").headers["location"] == "/login?next=/jobs"
    assert httpx.get(web.url + "/jobs.json?id=x").status_code == 401
    assert httpx.get(web.url + "/jobs/0123456789abcdef01234567.csv").status_code == 303
    unknown = httpx.get(web.url + "/jobs/0123456789abcdef01234567").json()  # the API's answer
    assert unknown["error"]["error_code"] == 50
