"""The enterprise endpoint (long files) and its jobs, against live servers and the official SDK."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import audd
import httpx
import numpy as np
import pytest
from live_server import HostRewrite, Server, start_server, stop_server

from soundmark.demo import write_wav
from soundmark.jobs import DONE, FAILED, QUEUED, JobStore
from support import PIECE_RATE, Piece, resample

SR = PIECE_RATE


def _mix(pieces: list[Piece], repeat: int = 1) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The pieces back to back with 6 s cross-fades; truth (title, start, end)."""
    out = np.zeros(0, dtype=np.float32)
    truth = []
    fade = 6 * SR
    for _ in range(repeat):
        for p in pieces:
            x = p.samples.astype(np.float32).copy()
            if len(out):
                x[:fade] *= np.sin(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
                out[len(out) - fade :] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
            start = max(0, len(out) - fade)
            mixed = np.zeros(start + len(x), dtype=np.float32)
            mixed[: len(out)] = out
            mixed[start:] += x
            out = mixed
            truth.append((p.title, start / SR, (start + len(x)) / SR))
    return out, truth


@pytest.fixture(scope="module")
def mix(pieces: list[Piece], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, float, float]]]:
    samples, truth = _mix(pieces)
    path = tmp_path_factory.mktemp("ent") / "mix.wav"
    write_wav(path, samples, SR)
    return path, truth


@pytest.fixture(scope="module")
def ent_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("enterprise")
    db = root / "db"
    shutil.copytree(built_store, db)
    tmp = root / "tmp"
    tmp.mkdir()
    env = {"SOUNDMARK_SCAN_WORKERS": "1", "TMPDIR": str(tmp)}
    s = start_server(db, root / "server.log", "--allow-private-urls", "--anonymous-per-day", "1000", env=env)
    yield s
    stop_server(s)


def _sdk(server: Server) -> tuple[audd.AudD, httpx.Client]:
    http = httpx.Client(transport=HostRewrite(server.url), timeout=120)
    return audd.AudD(server.token(), httpx_client=http, max_retries=1), http


def _spans(matches: list[audd.EnterpriseMatch]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for m in matches:
        assert m.title and m.start_seconds is not None and m.end_seconds is not None
        a, b = out.get(m.title, (m.start_seconds, m.end_seconds))
        out[m.title] = (min(a, m.start_seconds), max(b, m.end_seconds))
    return out


def test_sdk_recognize_enterprise(ent_server: Server, mix: tuple[Path, list[tuple[str, float, float]]]) -> None:
    """The SDK posts to https://enterprise.audd.io/ (Host kept): served at / for that host."""
    path, truth = mix
    client, http = _sdk(ent_server)
    try:
        matches = client.recognize_enterprise(str(path), return_metadata="apple_music")
    finally:
        http.close()
    assert matches and all(isinstance(m, audd.EnterpriseMatch) for m in matches)
    assert all(m.artist == "Test Band" and 0 <= (m.score or 0) <= 100 and m.timecode for m in matches)
    spans = _spans(matches)
    assert set(spans) == {t for t, _, _ in truth}
    for title, start, end in truth:
        assert abs(spans[title][0] - start) <= 2.0, (title, spans[title], start)
        assert abs(spans[title][1] - end) <= 2.0, (title, spans[title], end)


def test_enterprise_path_and_chunk_selection(
    ent_server: Server, mix: tuple[Path, list[tuple[str, float, float]]]
) -> None:
    path, _ = mix
    data = path.read_bytes()
    files = {"file": ("mix.wav", data, "application/octet-stream")}
    r = httpx.post(f"{ent_server.url}/enterprise/", data={"every": "1", "skip": "1", "limit": "3"}, files=files,
                   timeout=120).json()  # fmt: skip
    assert r["status"] == "success"
    assert [c["offset"] for c in r["result"]] == ["00:00", "00:24", "00:48"]
    assert all("start_offset" not in s for c in r["result"] for s in c["songs"])  # accurate_offsets off
    r = httpx.post(f"{ent_server.url}/enterprise", data={"skip_first_seconds": "100", "accurate_offsets": "true"},
                   files=files, timeout=120).json()  # fmt: skip
    first = r["result"][0]
    assert first["offset"] == "01:40" and "start_offset" in first["songs"][0]


def test_enterprise_url_and_errors(
    ent_server: Server, mix: tuple[Path, list[tuple[str, float, float]]], file_server: tuple[str, Path]
) -> None:
    base, root = file_server
    shutil.copy(mix[0], root / "long.wav")
    r = httpx.get(f"{ent_server.url}/enterprise/", params={"url": f"{base}/long.wav?t=60", "use_timecode": "true"},
                  timeout=120).json()  # fmt: skip
    assert r["status"] == "success" and r["result"][0]["offset"] == "01:00"
    r = httpx.post(ent_server.url + "/", headers={"Host": "enterprise.audd.io"}, timeout=30).json()
    assert r["status"] == "error" and r["error"]["error_code"] == 700
    # AudD's enterprise host echoes method "recognize" and times every answer (issue 9, item 14).
    assert r["requested_params"]["method"] == "recognize" and "request_params" not in r
    # As AudD's enterprise host: the bare sentence, no "Recognition failed:"-style method phrase.
    assert r["error"]["error_message"].startswith("You haven't sent a file"), r["error"]
    assert r["execution_time"].endswith("ms") and float(r["execution_time"][:-2]) >= 0
    r = httpx.post(f"{ent_server.url}/enterprise/", data={"url": f"{base}/missing.wav"}, timeout=30).json()
    assert r["status"] == "error" and r["error"]["error_code"] == 501
    r = httpx.post(f"{ent_server.url}/enterprise/", files={"file": ("x.bin", b"not audio" * 100)}, timeout=30).json()
    assert r["status"] == "error" and r["error"]["error_code"] in (300, 500)


def test_large_upload_stays_on_disk_and_is_deleted(ent_server: Server, pieces: list[Piece], tmp_path: Path) -> None:
    """An upload above the spool threshold (16 MB) never sits in memory and leaves no file."""
    samples, _ = _mix(pieces[:3], repeat=3)
    stereo = np.stack([samples, samples], axis=1)
    path = tmp_path / "big.wav"
    write_wav(path, stereo, 44100)
    assert path.stat().st_size > 16 * 1024 * 1024
    with open(path, "rb") as fh:
        r = httpx.post(f"{ent_server.url}/enterprise/", files={"file": ("big.wav", fh)}, timeout=120).json()
    assert r["status"] == "success"
    tmp = ent_server.db.parent / "tmp"
    assert not list(tmp.glob("soundmark-upload-*"))
    assert not list((ent_server.db / "jobs").glob("*.audio"))


def _wait_job(server: Server, job_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/jobs/{job_id}", timeout=10).json()
        assert body["status"] == "success"
        if body["result"]["status"] in (DONE, FAILED):
            return body["result"]  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_async_job_and_restart(
    built_store: Path, pieces: list[Piece], tmp_path: Path, mix: tuple[Path, list[tuple[str, float, float]]]
) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    env = {"SOUNDMARK_SCAN_WORKERS": "1"}
    server = start_server(db, tmp_path / "a.log", "--anonymous-per-day", "1000", env=env)
    try:
        r = httpx.post(f"{server.url}/enterprise/", data={"async": "true"},
                       files={"file": ("mix.wav", mix[0].read_bytes())}, timeout=60).json()  # fmt: skip
        assert r["status"] == "success" and r["result"]["status"] == "queued"
        first_id = r["result"]["job_id"]
        done = _wait_job(server, first_id)
        assert done["status"] == DONE and done["progress"] == 1.0
        titles = [t["title"] for t in done["tracklist"]]  # type: ignore[union-attr]
        assert titles == [p.title for p in pieces]
        assert done["result"] and httpx.get(f"{server.url}/enterprise/jobs/{done['job_id']}", timeout=10).json()[
            "result"]["tracklist"] == done["tracklist"]  # fmt: skip
        # A long job, stopped by a server restart while it runs, is resumed by the next server.
        samples, _ = _mix(pieces, repeat=8)
        long = tmp_path / "long.wav"
        write_wav(long, resample(samples, SR, 8000), 8000)  # 8 kHz keeps the upload small; ~27 min
        r = httpx.post(f"{server.url}/enterprise/", data={"async": "true"},
                       files={"file": ("long.wav", long.read_bytes())}, timeout=60).json()  # fmt: skip
        job_id = r["result"]["job_id"]
        time.sleep(1.0)
        running = httpx.get(f"{server.url}/jobs/{job_id}", timeout=10).json()["result"]
        assert running["status"] in (QUEUED, "running")
    finally:
        stop_server(server)
    jobs = JobStore(db)
    try:
        stopped = jobs.get(job_id)
        assert stopped is not None and stopped.status == QUEUED and jobs.audio_path(job_id).exists()
        assert stopped.attempts == 0  # a clean stop does not count towards the poison-job guard
    finally:
        jobs.close()
    server = start_server(db, tmp_path / "b.log", "--anonymous-per-day", "1000", env=env)
    try:
        done = _wait_job(server, job_id, timeout=120)
        assert done["status"] == DONE and len(done["tracklist"]) >= 6 * 8 - 2  # type: ignore[arg-type]
        first = _wait_job(server, first_id)
        assert first["status"] == DONE
        missing = httpx.get(f"{server.url}/jobs/nope", timeout=10).json()
        assert missing["status"] == "error"
    finally:
        stop_server(server)


def test_jobs_recover_after_a_crash(tmp_path: Path, built_store: Path) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    jobs = JobStore(db)
    try:
        kept = jobs.create("enterprise", "upload", {})
        lost = jobs.create("enterprise", "upload", {})
        jobs.update(kept.id, status="running", progress=0.5)
        jobs.update(lost.id, status="running")
        jobs.audio_path(kept.id).write_bytes(b"audio")
        assert jobs.recover() == [kept.id]
        again, gone = jobs.get(kept.id), jobs.get(lost.id)
        assert again is not None and again.status == QUEUED and again.progress == 0
        assert gone is not None and gone.status == FAILED and gone.error_message
    finally:
        jobs.close()
