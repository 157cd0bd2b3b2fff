"""The deployment of the scale-out issue, with real processes: two ``--role api`` nodes, one
``--role monitor`` node and one ``--role jobs`` node, each with its own ``--db`` directory, over one
PostgreSQL catalog and one Redis Cluster index.

A stream added through API node A (with the audd SDK) is monitored by the monitor node; its songs
arrive once each at the account's callback URL and through longpoll on API node B; an enterprise
upload accepted by node B is run by the jobs node and read back through node A."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import audd
import httpx
import pytest
from live_server import HostRewrite, Server, start_server, stop_server
from nodes_cluster import Cluster

from support import Piece, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "streams"))  # the loopback radio
from radio import RATE, CallbackReceiver, Item, Schedule, VirtualRadio

ENV = {
    "SOUNDMARK_STREAM_WINDOW_SECONDS": "8", "SOUNDMARK_STREAM_HOP_SECONDS": "4",
    "SOUNDMARK_STREAM_SONG_GAP_SECONDS": "8", "SOUNDMARK_STREAM_SYNC_SECONDS": "1",
    "SOUNDMARK_SCAN_WORKERS": "1",
}  # fmt: skip
SONG_SECONDS = 24.0
LONGPOLL_TIMEOUT = 60


@pytest.fixture(scope="module")
def topology(cluster: Cluster) -> Iterator[dict[str, Server]]:
    nodes: dict[str, Server] = {}
    env = {**cluster.env, **ENV}
    try:
        for name, role in (("api-a", "api"), ("api-b", "api"), ("monitor", "monitor"), ("jobs", "jobs")):
            db = cluster.node_dir(f"topo-{name}")
            flags = ("--role", role, "--allow-private-urls")
            nodes[name] = start_server(db, cluster.root / f"topo-{name}.log", *flags, env=env)
        yield nodes
    finally:
        for server in nodes.values():
            stop_server(server)


def test_stream_songs_arrive_once_by_callback_and_by_longpoll_on_the_other_api_node(
    cluster: Cluster, topology: dict[str, Server], pieces: list[Piece]
) -> None:
    a, b = topology["api-a"], topology["api-b"]
    played = [pieces[0], pieces[1]]
    radio = VirtualRadio(Schedule([Item(p.title, p.samples[: int(SONG_SECONDS * RATE)]) for p in played]))
    receiver = CallbackReceiver()
    receiver.up()
    token = cluster.cli("token", "create", "--name", "radio", "--scopes", "recognize,streams").stdout.split()[-1]
    try:
        with httpx.Client(transport=HostRewrite(a.url), timeout=60) as http:
            sdk = audd.AudD(token, httpx_client=http, max_retries=1)
            sdk.streams.set_callback_url(receiver.url)
            sdk.streams.add(f"{radio.url}/0.mp3", 7, callbacks="before")
        [stream] = httpx.post(f"{b.url}/getStreams/", data={"api_token": token}).json()["result"]
        # Longpoll on node B, which neither monitors nor wrote anything.
        heard: list[str] = []
        since = int(time.time() * 1000) - 1000
        with httpx.Client(timeout=LONGPOLL_TIMEOUT + 10) as client:
            deadline = time.monotonic() + 150
            while len(set(heard)) < len(played) and time.monotonic() < deadline:
                params = {"category": stream["longpoll_category"], "timeout": LONGPOLL_TIMEOUT, "since_time": since}
                body = client.get(f"{b.url}/longpoll/", params=params).json()
                since = body["timestamp"]
                for event in body.get("events", []):
                    result = event["data"].get("result")
                    if isinstance(result, dict):
                        heard.append(result["results"][0]["title"])
        assert set(heard) >= {p.title for p in played}, heard

        def callback_titles() -> list[str]:
            return [
                body["result"]["results"][0]["title"]  # type: ignore[index]
                for body in receiver.snapshot()
                if isinstance(body.get("result"), dict)
            ]

        wait_for("both songs by callback", lambda: set(callback_titles()) >= {p.title for p in played}, 60)
        time.sleep(3)  # any duplicate would have been delivered by now
        titles = callback_titles()
        # Once each per play: the radio loops, so a title may come back only after the other one.
        assert all(x != y for x, y in itertools.pairwise(titles)), titles
        assert all(x != y for x, y in itertools.pairwise(heard)), heard
        assert titles[: len(played)] == heard[: len(played)]
    finally:
        receiver.down()
        radio.close()


def test_an_upload_accepted_by_one_api_node_is_run_by_the_jobs_node(
    topology: dict[str, Server], pieces: list[Piece]
) -> None:
    a, b = topology["api-a"], topology["api-b"]
    piece = pieces[2]
    queued = httpx.post(f"{b.url}/enterprise/", data={"async": "true"},
                        files={"file": ("a.wav", piece.path.read_bytes())}, timeout=60).json()  # fmt: skip
    assert queued["status"] == "success", queued
    job_id = queued["result"]["job_id"]

    def status() -> str:
        return str(httpx.get(f"{a.url}/jobs/{job_id}").json()["result"]["status"])

    assert wait_for("the job to be done", lambda: status() == "done", 180)
    view = httpx.get(f"{a.url}/jobs/{job_id}").json()["result"]
    assert [t["title"] for t in view["tracklist"]][:1] == [piece.title]
