"""Two ``serve --role monitor`` processes and one ``--role api`` process, each with its own
``--db`` directory, over one PostgreSQL catalog and one Redis Cluster index: exactly one monitor
holds the stream (the virtual radio counts one listener); ``kill -9`` of the holder and the other
holds it within the lease bound, and results keep coming; no play is reported twice (the song on
air at the takeover is not announced again); a longpoll on the API node, which monitors nothing,
is woken by the events the monitors write; the callback receiver gets no event twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from live_server import Server, start_server, stop_server
from radio import RATE, CallbackReceiver, Item, Schedule, VirtualRadio

from servers import delete_prefix, drop_schema
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.store import use_catalog_url
from soundmark.streams.leases import LEASE_SECONDS, RENEW_SECONDS
from soundmark.streams.registry import StreamStore, token_md5
from support import Piece, wait_for

ENV = {
    "SOUNDMARK_STREAM_WINDOW_SECONDS": "8", "SOUNDMARK_STREAM_HOP_SECONDS": "4",
    "SOUNDMARK_STREAM_SONG_GAP_SECONDS": "8", "SOUNDMARK_STREAM_SYNC_SECONDS": "1",
    "SOUNDMARK_SCAN_WORKERS": "1",
}  # fmt: skip
TAKEOVER_BOUND = LEASE_SECONDS + RENEW_SECONDS + 5  # the lease, a renewal period, a sync's slack


class CountingRadio(VirtualRadio):
    def __init__(self, schedule: Schedule):
        super().__init__(schedule, burst_packets=0)
        self.listeners = 0
        self.connected = 0
        self._lock = threading.Lock()

    def listen(self, mount: int) -> Iterator[bytes]:
        with self._lock:
            self.listeners += 1
            self.connected += 1
        try:
            yield from super().listen(mount)
        finally:
            with self._lock:
                self.connected -= 1


@pytest.fixture(scope="module")
def shared(
    backend_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory, pieces: list[Piece]
) -> Iterator[dict[str, str]]:
    """The environment of a node over a new shared store holding three pieces (added by the CLI)."""
    tmp_path = tmp_path_factory.mktemp("shared")
    schema, prefix = f"s_{uuid.uuid4().hex[:12]}", f"streams-{uuid.uuid4().hex[:12]}"
    pg, redis = backend_servers["SOUNDMARK_TEST_POSTGRES_URL"], backend_servers["SOUNDMARK_TEST_REDIS_URL"]
    env = {**ENV, "SOUNDMARK_CATALOG_URL": f"{pg}?schema={schema}", "SOUNDMARK_INDEX_URL": f"{redis}/{prefix}"}
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,title,artist\n" + "".join(f"{p.path},{p.title},Test Band\n" for p in pieces[:3]))
    cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(tmp_path / "cli"), "--quiet", "--processes", "1",
           "--manifest", str(manifest)]  # fmt: skip
    subprocess.run(cmd, env={**os.environ, **env}, check=True, capture_output=True, timeout=300)
    try:
        yield env
    finally:
        drop_schema(pg, schema)
        delete_prefix(redis, prefix)


def _holder(probe: Catalog, category: str) -> tuple[str, int] | None:
    """(node id, pid) of the monitor holding the stream of ``category`` now."""
    row = probe.conn.execute(
        "SELECT s.owner, n.pid FROM streams s JOIN nodes n ON n.id = s.owner WHERE s.category=? AND s.lease_until>?",
        (category, time.time()),
    ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def _results(probe: Catalog, category: str) -> list[tuple[str, str, int]]:
    """(title, timestamp, created_ms) of every result event of the stream, in order."""
    rows = probe.conn.execute(
        "SELECT payload, created_ms FROM stream_events WHERE kind='result' AND category=? ORDER BY id", (category,)
    )
    out = []
    for payload, ms in rows.fetchall():
        result = json.loads(payload)["result"]
        out.append((str(result["results"][0]["title"]), str(result["timestamp"]), int(ms)))
    return out


def test_the_stream_methods_on_an_api_node_over_postgresql(shared: dict[str, str], tmp_path: Path) -> None:
    api = start_server(tmp_path / "api", tmp_path / "api.log", "--role", "api", "--allow-private-urls", env=shared)
    try:
        cmd = [sys.executable, "-m", "soundmark", "token", "create", "--db", str(api.db), "--name", "methods",
               "--scopes", "recognize,streams"]  # fmt: skip
        made = subprocess.run(cmd, env={**os.environ, **shared}, capture_output=True, text=True, check=True)
        token = made.stdout.strip().splitlines()[-1]  # (in this store, whatever the test's environment)
        hook = "http://127.0.0.1:9/hook?return=apple_music"

        def call(method: str, **params: str) -> object:
            body = httpx.post(f"{api.url}/{method}/", data={"api_token": token, **params}, timeout=30).json()
            assert body["status"] == "success", (method, body)
            return body["result"]

        call("setCallbackUrl", url=hook)
        assert call("getCallbackUrl") == hook
        call("addStream", url="http://127.0.0.1:9/one.mp3", radio_id="7", callbacks="before")
        call("addStream", url="http://127.0.0.1:9/two.mp3", radio_id="8")
        call("setStreamUrl", url="http://127.0.0.1:9/three.mp3", radio_id="8")
        listed = call("getStreams")
        assert isinstance(listed, list)
        assert [(s["radio_id"], s["url"]) for s in listed] == [
            (7, "http://127.0.0.1:9/one.mp3"), (8, "http://127.0.0.1:9/three.mp3"),
        ]  # fmt: skip
        category = listed[0]["longpoll_category"]
        channel = httpx.get(f"{api.url}/lastSong/getChannelById/", params={"ch_id": f"-{category}"}).json()
        assert channel["StringId"] == category and channel["History"]["Elements"] == []
        timeout = httpx.get(f"{api.url}/longpoll/", params={"category": category, "timeout": 1}, timeout=30).json()
        assert timeout["timeout"] == "no events before timeout"
        call("deleteStream", radio_id="7")
        assert [s["radio_id"] for s in call("getStreams")] == [8]  # type: ignore[attr-defined]
        call("deleteStream", radio_id="8")
        assert call("getStreams") == []
    finally:
        stop_server(api)


def test_a_killed_monitor_s_stream_is_taken_over_without_reporting_a_play_twice(
    shared: dict[str, str], tmp_path: Path, pieces: list[Piece]
) -> None:
    songs = pieces[:3]  # each once per loop of the radio (120 s): a title heard twice is one play
    radio = CountingRadio(Schedule([Item(p.title, p.samples[: int(40 * RATE)]) for p in songs]))
    receiver = CallbackReceiver()
    receiver.up()
    servers: list[Server] = []
    probe_dir = tmp_path / "probe"  # this test's own node directory
    use_catalog_url(probe_dir, shared["SOUNDMARK_CATALOG_URL"], create=False)
    probe = Catalog(probe_dir)
    try:
        token, info = TokenStore(probe).create("radio", scopes={"recognize", "streams"})
        md5 = token_md5(token)
        with closing(StreamStore(probe_dir)) as streams:
            streams.add_stream(info.id, md5, 1, f"{radio.url}/0.mp3", "before")
            streams.set_callback_url(info.id, md5, receiver.url)
            [stream] = streams.streams(info.id)
        category = stream.category
        for name in ("monitor-a", "monitor-b"):
            servers.append(start_server(tmp_path / name, tmp_path / f"{name}.log", "--role", "monitor",
                                        "--allow-private-urls", env=shared))  # fmt: skip
        api = start_server(tmp_path / "api", tmp_path / "api.log", "--role", "api", env=shared)
        servers.append(api)
        monitors = {s.proc.pid: s for s in servers[:2]}

        holder = wait_for("a monitor to hold the stream", lambda: _holder(probe, category), 30)
        assert holder[1] in monitors
        first = wait_for("a first song reported", lambda: _results(probe, category), 90)
        time.sleep(2 * RENEW_SECONDS)  # several renewals: the holder keeps the stream
        assert _holder(probe, category) == holder and radio.listeners == 1 and radio.connected == 1

        # A longpoll on the API node (it monitors nothing) waits for the next event.
        polled: dict[str, object] = {}

        def longpoll() -> None:
            params = {"category": category, "timeout": 110, "since_time": first[-1][2]}
            with httpx.Client(timeout=120) as client:
                polled.update(client.get(f"{api.url}/longpoll/", params=params).json())

        poller = threading.Thread(target=longpoll, daemon=True)
        poller.start()

        killed = monitors[holder[1]]
        killed.proc.send_signal(signal.SIGKILL)
        killed.proc.wait()

        def taken_over() -> tuple[str, int] | None:
            now = _holder(probe, category)
            return now if now is not None and now[0] != holder[0] else None

        new = wait_for("the other monitor to hold the stream", taken_over, TAKEOVER_BOUND)
        assert new[1] in monitors and new[1] != holder[1]
        # Results keep coming from the new holder: the next song is reported.
        reported_before = {title for title, _, _ in _results(probe, category)}

        def new_songs() -> list[tuple[str, str, int]]:
            return [r for r in _results(probe, category) if r[0] not in reported_before]

        later = wait_for("a song reported after the takeover", new_songs, 120)
        assert later
        poller.join(timeout=120)
        assert "events" in polled, polled  # woken by an event a monitor process wrote
        # Each play reported once: no title twice within one loop of the radio.
        results = _results(probe, category)
        titles = [title for title, _, _ in results]
        assert len(titles) == len(set(titles)), results
        assert set(titles) <= {p.title for p in songs}
        # The callback receiver got no event twice (two delivering nodes, one killed).
        bodies = [json.dumps(b, sort_keys=True) for b in receiver.snapshot()]
        assert bodies and len(bodies) == len(set(bodies))
    finally:
        for s in servers:
            if s.proc.poll() is None:
                stop_server(s)
        probe.close()
        receiver.down()
        radio.close()
