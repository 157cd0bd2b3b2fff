"""Memory ceiling: hostile requests (issue 9 items 1, 4 and 8) against one live server, at once,
while the RSS of the server and of every process it started is sampled.

Bound: no process of the server's tree goes past ``PROCESS_CEILING_MB`` of resident memory
(a fresh worker holds ~150 MB: Python, NumPy, SciPy, PyAV and an open store), and the server keeps
answering. Before the fixes, item 1 grew the main process by ~100 MB/s until the kernel killed it
and item 4 took a worker to 1.15 GB.
"""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from live_server import Server, start_server, stop_server

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece

PROCESS_CEILING_MB = 600


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler:
    """Samples every process of a tree in a thread; ``peak`` is the largest single-process RSS."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0.0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.pid)
            self.processes = max(self.processes, len(pids))
            self.peak = max([self.peak, *(_rss_mb(p) for p in pids)])
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _silent_flac(path: Path, seconds: int, rate: int = 8000) -> None:
    """A FLAC of ``seconds`` of silence: under a megabyte that decodes to a long recording."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        block = np.zeros((1, rate * 10), dtype=np.int16)
        for i in range(seconds // 10):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = i * rate * 10
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def hostile_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    root = tmp_path_factory.mktemp("ceiling")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--anonymous-per-day", "10000")
    yield s
    stop_server(s)


def test_hostile_requests_stay_under_the_memory_ceiling(
    hostile_server: Server, pieces: list[Piece], tmp_path: Path
) -> None:
    s = hostile_server
    token = s.token("writer")
    clip = tmp_path / "clip.wav"
    write_wav(clip, pieces[0].samples[: 30 * PIECE_RATE], PIECE_RATE)
    bomb = tmp_path / "bomb.flac"
    _silent_flac(bomb, 3600)
    assert bomb.stat().st_size < 1024 * 1024
    clip_bytes, bomb_bytes = clip.read_bytes(), bomb.read_bytes()

    def enterprise(params: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{s.url}/enterprise/", data=params, files={"file": ("c.wav", clip_bytes)}, timeout=120)

    def upload(params: dict[str, str], data: bytes) -> httpx.Response:
        return httpx.post(f"{s.url}/upload/", data=params, files={"file": ("b.flac", data)}, timeout=300)

    hostile = [
        lambda: enterprise({"skip": "1"}),  # item 1: never-ending span plan
        lambda: enterprise({"every": "1", "skip": "2"}),
        lambda: enterprise({"skip": "1e30"}),
        lambda: enterprise({"skip": "inf", "every": "1e400"}),
        lambda: upload({"api_token": token, "audio_id": "7"}, bomb_bytes),  # item 4: a decompression bomb
        lambda: httpx.post(f"{s.url}/upload/", data={"api_token": token, "audio_id": str(2**64)}, timeout=30),
        lambda: httpx.get(f"{s.url}/", params={"method": "deleteStream", "api_token": token, "radio_id": "9" * 30}),
        lambda: httpx.get(f"{s.url}/longpoll/", params={"category": "abcdef123", "since_time": "9" * 20}),
    ]
    with RssSampler(s.proc.pid) as sampler, ThreadPoolExecutor(len(hostile)) as pool:
        responses = list(pool.map(lambda f: f(), hostile))
    *audd, poll = responses
    for r in audd:
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("success", "error"), r.text
    for r in responses:
        assert "Traceback" not in r.text
    for r in (audd[0], audd[1]):  # the periodic selections end, with what plays in the chunks read
        chunks = r.json()["result"]
        assert chunks and all(song["title"] == pieces[0].title for c in chunks for song in c["songs"])
    for r in audd[2:4] + audd[5:]:
        assert r.json()["error"]["error_code"] == 50, r.text
    assert audd[4].json()["status"] == "error"  # an hour of silence has no fingerprint to store
    assert poll.status_code == 400 and "since_time" in poll.json()["error"]
    assert s.proc.poll() is None
    assert httpx.get(f"{s.url}/healthz", timeout=10).status_code == 200
    assert sampler.processes >= 2  # the workers were sampled too
    assert sampler.peak < PROCESS_CEILING_MB, f"a process reached {sampler.peak:.0f} MB"
