"""Child processes die with their parent (issue 9, item 5): after a SIGKILL of ``soundmark serve``
(recognition workers, the multiprocessing resource tracker, scan workers of a running job) or of
``soundmark add`` (its extraction workers), none of their processes keeps running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from live_server import start_server
from long_audio import bursts, write_flac
from procs import alive, cmdline, descendants

from support import Piece

GONE_WITHIN = 10.0  # seconds the orphans get to notice (they poll every 0.5 s; PDEATHSIG is instant)


def _kill_and_wait_for_orphans(proc: subprocess.Popen[bytes], children: list[int]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + GONE_WITHIN
    while (left := [pid for pid in children if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, {pid: cmdline(pid) for pid in left}


def _wait_for_children(pid: int, more_than: int, timeout: float = 60.0) -> list[int]:
    """The descendants of ``pid`` once there are more than ``more_than`` of them."""
    deadline = time.monotonic() + timeout
    while len(found := descendants(pid)) <= more_than:
        assert time.monotonic() < deadline, f"only {found} under {pid}"
        time.sleep(0.1)
    return found


def test_killed_server_leaves_no_worker_or_resource_tracker(
    built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    shutil.copytree(built_store, tmp_path / "db")
    server = start_server(tmp_path / "db", tmp_path / "server.log", "--anonymous-per-day", "1000",
                          env={"SOUNDMARK_SCAN_WORKERS": "1"})  # fmt: skip
    try:
        r = httpx.post(server.url + "/", files={"file": ("q.wav", pieces[0].path.read_bytes())}, timeout=60).json()
        assert r["status"] == "success" and r["result"] is not None, r  # the recognition workers are up
        idle = descendants(server.proc.pid)
        assert any("resource_tracker" in cmdline(pid) for pid in idle), [cmdline(p) for p in idle]
        # A long job in flight adds its scan workers.
        long = write_flac(tmp_path / "long.flac", bursts(3600.0))
        r = httpx.post(f"{server.url}/enterprise/", data={"async": "true"},
                       files={"file": ("long.flac", long.read_bytes())}, timeout=60).json()  # fmt: skip
        assert r["status"] == "success", r
        children = _wait_for_children(server.proc.pid, more_than=len(idle))
    except BaseException:
        server.proc.kill()
        raise
    _kill_and_wait_for_orphans(server.proc, children)


def test_killed_add_leaves_no_extraction_worker(tmp_path: Path) -> None:
    files = [write_flac(tmp_path / f"{k}.flac", bursts(1800.0, seed=k)) for k in range(4)]
    cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(tmp_path / "db"), "--jobs", "2", *map(str, files)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        children = _wait_for_children(proc.pid, more_than=1)  # both extraction workers
    except BaseException:
        proc.kill()
        raise
    _kill_and_wait_for_orphans(proc, children)
