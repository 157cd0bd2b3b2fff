"""Decompression bombs: a small file that decodes to hours is fingerprinted in bounded memory,
and one longer than the duration cap is refused while it decodes, for ``/upload/`` (official SDK
against a live server) and ``soundmark add`` alike."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import audd
import httpx
import pytest
from live_server import HostRewrite, Server, start_server, stop_server
from long_audio import RATE, bursts, write_flac
from procs import descendants, peak_rss_mb

CAP_HOURS = 0.75
# Decoding an hour whole and fingerprinting the array took a worker past 1.1 GB; streamed, the
# worker stays near what it holds idle (~150 MB: the store, NumPy, SciPy, FFmpeg).
WORKER_PEAK_MB = 400


@pytest.fixture(scope="module")
def capped_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits")
    shutil.copytree(built_store, root / "db")
    env = {"SOUNDMARK_MAX_TRACK_HOURS": str(CAP_HOURS)}
    s = start_server(root / "db", root / "server.log", "--anonymous-per-day", "1000", env=env)
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def sdk(capped_server: Server) -> Iterator[audd.AudD]:
    client = httpx.Client(transport=HostRewrite(capped_server.url), timeout=120)
    yield audd.AudD(capped_server.token(), httpx_client=client, max_retries=1)
    client.close()


def _worker_peaks(server: Server) -> dict[int, float]:
    pids = descendants(server.proc.pid)
    assert pids, "the server has no worker processes"
    return {pid: peak_rss_mb(pid) for pid in pids}


def test_an_upload_longer_than_the_cap_is_refused_while_it_decodes(
    capped_server: Server, sdk: audd.AudD, tmp_path: Path
) -> None:
    bomb = write_flac(tmp_path / "hour.flac", bursts(3600.0))  # 1 h in ~3 MB, over the 0.75 h cap
    assert bomb.stat().st_size < 4 * 1024 * 1024
    with pytest.raises(audd.AudDInvalidAudioError) as err:
        sdk.custom_catalog.add(7001, str(bomb))
    assert err.value.error_code == 400
    assert "longer than 45 min" in str(err.value)
    peaks = _worker_peaks(capped_server)
    assert max(peaks.values()) < WORKER_PEAK_MB, peaks


def test_an_upload_of_hours_is_fingerprinted_in_bounded_memory(
    capped_server: Server, sdk: audd.AudD, tmp_path: Path
) -> None:
    samples = bursts(0.7 * 3600, seed=2)  # 42 min under the cap: stored, and recognisable
    sdk.custom_catalog.add(7002, str(write_flac(tmp_path / "long.flac", samples)))
    peaks = _worker_peaks(capped_server)
    assert max(peaks.values()) < WORKER_PEAK_MB, peaks
    query = write_flac(tmp_path / "q.flac", samples[1800 * RATE : 1812 * RATE])
    result = sdk.recognize(str(query))
    assert result is not None and result.audio_id == 7002 and result.timecode == "30:00"


def test_add_refuses_a_file_over_the_cap_and_streams_the_rest(tmp_path: Path) -> None:
    """``soundmark add`` (one process, so its peak memory is the extraction's)."""
    over = write_flac(tmp_path / "over.flac", bursts(3600.0))
    under = write_flac(tmp_path / "under.flac", bursts(0.7 * 3600, seed=3))
    # A parent of its own reports the largest resident size of the process it waited for.
    probe = (
        "import resource, subprocess, sys;"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "sys.stderr.write(r.stderr); print(r.stdout);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(tmp_path / "db"), "--processes", "1", "--json",
           str(over), str(under)]  # fmt: skip
    env = {**os.environ, "SOUNDMARK_MAX_TRACK_HOURS": str(CAP_HOURS)}
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, env=env, check=True)
    *report_lines, peak = out.stdout.strip().splitlines()
    report = json.loads("\n".join(report_lines))
    assert report["added"] == 1 and report["failed"] == 1, report
    assert "longer than 45 min" in json.dumps(report["failures"])
    assert float(peak) < WORKER_PEAK_MB, f"add peaked at {peak} MB"
