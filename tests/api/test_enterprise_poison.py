"""The poison-job guard (issue 9, item 1): a job that took the server down on each of its
starts is failed on the next startup instead of resumed into another crash."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
from live_server import start_server, stop_server

from soundmark.jobs import DONE, FAILED, RUNNING, JobStore
from support import Piece


def test_a_job_started_max_attempts_times_is_failed_on_restart(
    built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    jobs = JobStore(db)
    try:
        # As a crash leaves them: status running, audio in place, the start counted.
        poison = jobs.create("enterprise", "upload", {"chunk_seconds": 12.0})
        once = jobs.create("enterprise", "upload", {"chunk_seconds": 12.0})
        for job, attempts in ((poison, 2), (once, 1)):
            shutil.copy(pieces[0].path, jobs.audio_path(job.id))
            jobs.update(job.id, status=RUNNING, attempts=attempts)
    finally:
        jobs.close()
    server = start_server(db, tmp_path / "server.log", "--anonymous-per-day", "1000",
                          env={"SOUNDMARK_SCAN_WORKERS": "1", "SOUNDMARK_JOB_MAX_ATTEMPTS": "2"})  # fmt: skip
    try:
        body = httpx.get(f"{server.url}/jobs/{poison.id}", timeout=10).json()
        assert body["result"]["status"] == FAILED, body
        assert "not retried" in body["result"]["error"]["error_message"]
        assert not (db / "jobs" / f"{poison.id}.audio").exists()
        # A job started once (one crash) is still resumed, and runs to its end.
        deadline = time.monotonic() + 60
        while (state := httpx.get(f"{server.url}/jobs/{once.id}", timeout=10).json()["result"])["status"] != DONE:
            assert state["status"] != FAILED and time.monotonic() < deadline, state
            time.sleep(0.2)
        assert [t["title"] for t in state["tracklist"]] == [pieces[0].title]
    finally:
        stop_server(server)
    jobs = JobStore(db)
    try:
        failed, done = jobs.get(poison.id), jobs.get(once.id)
        assert failed is not None and failed.status == FAILED and failed.attempts == 2  # never started again
        assert done is not None and done.status == DONE and done.attempts == 2
    finally:
        jobs.close()
