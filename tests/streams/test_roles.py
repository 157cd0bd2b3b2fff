"""Process roles with real processes on one store: an ``api`` node and a ``monitor`` node share
``--db``. A stream added through the api node is monitored by the monitor node only (the virtual
radio counts its listeners), and the song the monitor reports is read through longpoll on the api
node (which watches the event table: it writes no events itself). An enterprise job queued on the
api node stays queued (an api node neither runs nor recovers jobs) until a ``jobs`` node starts."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import Server, start_server, stop_server
from radio import RATE, Item, Schedule, VirtualRadio

from support import Piece, wait_for

ENV = {
    "SOUNDMARK_STREAM_WINDOW_SECONDS": "8", "SOUNDMARK_STREAM_HOP_SECONDS": "4",
    "SOUNDMARK_STREAM_SONG_GAP_SECONDS": "8", "SOUNDMARK_STREAM_SYNC_SECONDS": "1",
    "SOUNDMARK_SCAN_WORKERS": "1",
}  # fmt: skip
LONGPOLL_TIMEOUT = 110  # seconds: far longer than the wait for the first song


class CountingRadio(VirtualRadio):
    """The virtual radio, counting the listeners that connected to it."""

    def __init__(self, schedule: Schedule):
        super().__init__(schedule, burst_packets=0)
        self.listeners = 0

    def listen(self, mount: int) -> Iterator[bytes]:
        self.listeners += 1
        yield from super().listen(mount)


@pytest.fixture()
def nodes(built_store: Path, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    api = start_server(db, tmp_path / "api.log", "--role", "api", "--allow-private-urls", env=ENV)
    monitor = None
    try:
        monitor = start_server(db, tmp_path / "monitor.log", "--role", "monitor", "--allow-private-urls", env=ENV)
        yield api, monitor
    finally:
        stop_server(api)
        if monitor is not None:
            stop_server(monitor)


def test_a_stream_added_on_the_api_node_is_monitored_by_the_monitor_node_and_read_by_longpoll(
    nodes: tuple[Server, Server], pieces: list[Piece]
) -> None:
    api, monitor = nodes
    piece = pieces[0]
    radio = CountingRadio(Schedule([Item(piece.title, piece.samples[: int(30 * RATE)])]))
    try:
        token = api.token("radio", "--scopes", "recognize,streams")
        since = int(time.time() * 1000)
        added = httpx.post(f"{api.url}/addStream/", data={"api_token": token, "url": f"{radio.url}/0.mp3",
                                                          "radio_id": "1", "callbacks": "before"}).json()  # fmt: skip
        assert added == {"status": "success", "result": None}, added
        [stream] = httpx.post(f"{api.url}/getStreams/", data={"api_token": token}).json()["result"]

        song: dict | None = None
        with httpx.Client(timeout=LONGPOLL_TIMEOUT + 10) as client:
            deadline = time.monotonic() + 120
            while song is None and time.monotonic() < deadline:
                asked = time.monotonic()
                params = {"category": stream["longpoll_category"], "timeout": LONGPOLL_TIMEOUT, "since_time": since}
                body = client.get(f"{api.url}/longpoll/", params=params).json()
                since = body["timestamp"]
                if "events" in body and isinstance(body["events"][0]["data"].get("result"), dict):
                    song = body["events"][0]["data"]["result"]
                    # Woken when the monitor node wrote the event, not at the end of the wait.
                    assert time.monotonic() - asked < LONGPOLL_TIMEOUT - 10
        assert song is not None, "no song reported through the api node's longpoll"
        assert song["radio_id"] == 1 and song["results"][0]["title"] == piece.title
        # The monitor node listens; the api node never connected to the stream.
        time.sleep(3)  # a few more sync rounds of both nodes
        assert radio.listeners == 1
        assert wait_for("stream_running", lambda: httpx.post(f"{api.url}/getStreams/", data={"api_token": token})
                        .json()["result"][0]["stream_running"], 30)  # fmt: skip
        # The monitor node serves only the probes.
        assert httpx.get(f"{monitor.url}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{monitor.url}/metrics").status_code == 200
        assert httpx.post(f"{monitor.url}/addStream/", data={"api_token": token}).status_code == 404
    finally:
        radio.close()


def test_an_enterprise_job_queued_on_the_api_node_waits_for_a_jobs_node(
    nodes: tuple[Server, Server], pieces: list[Piece], tmp_path: Path
) -> None:
    api, _monitor = nodes
    piece = pieces[1]
    queued = httpx.post(f"{api.url}/enterprise/", data={"async": "true"},
                        files={"file": ("a.wav", piece.path.read_bytes())}, timeout=60).json()  # fmt: skip
    assert queued["status"] == "success" and queued["result"]["status"] == "queued", queued
    job_id = queued["result"]["job_id"]

    def status() -> str:
        return str(httpx.get(f"{api.url}/jobs/{job_id}").json()["result"]["status"])

    time.sleep(4)  # several pick-up rounds, were anyone running jobs
    assert status() == "queued"
    jobs = start_server(api.db, tmp_path / "jobs.log", "--role", "jobs", env=ENV)
    try:
        assert wait_for("the job to be done", lambda: status() == "done", 180)
        view = httpx.get(f"{api.url}/jobs/{job_id}").json()["result"]
        assert [t["title"] for t in view["tracklist"]][:1] == [piece.title]
    finally:
        stop_server(jobs)
