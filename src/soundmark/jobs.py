"""Long-recording jobs: a scan with an id, progress and a result, kept in the catalog database.

A job's input audio waits where every node of the store can read it (``job_audio.py``: a file of
the store directory on SQLite, chunks in the catalog on PostgreSQL) until the job ends. A runner
analyses at most ``max_jobs`` jobs at once (threads that drive ``match.segments.scan``, whose CPU
work runs in ``scan_workers`` worker processes) and writes progress and the result into the
``jobs`` table (``job_store.py``), so a job outlives the request that created it, the server, and
the node that ran it.

A runner claims a job before it runs it and holds it under a lease that it renews while it runs
(``job_store.py`` says how a claim stays atomic across nodes). A node that dies mid-job leaves
its lease to run out; then any job node claims the job and runs it again from the start: a scan
keeps no partial segments, only a progress figure, and a tracklist is built over the whole
recording (segments merged across chunks), so the result is that of an uninterrupted run. A
node that stops cleanly gives its jobs back at once (queued again, the start not counted).

The names of ``job_store.py`` are exported here too: this module is the jobs' one entry point.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from soundmark.errors import SoundmarkError
from soundmark.job_store import (
    ACTIVE,
    DONE,
    FAILED,
    JOB_LEASE_SECONDS,
    JOBS_DIR,
    QUEUED,
    RUNNING,
    Job,
    JobStore,
    new_node_id,
    row_to_job,
)
from soundmark.match.scan import ScanCancelled, ScanSettings, chunk_spans, scan

__all__ = [
    "ACTIVE",
    "DONE",
    "FAILED",
    "JOBS_DIR",
    "JOB_LEASE_SECONDS",
    "QUEUED",
    "RUNNING",
    "Job",
    "JobRunner",
    "JobStore",
    "new_node_id",
    "row_to_job",
    "run_job",
]

log = logging.getLogger("soundmark.jobs")


def scan_settings_for(params: dict[str, Any]) -> ScanSettings:
    s = ScanSettings()
    changes: dict[str, Any] = {}
    if params.get("hop_seconds"):
        changes["hop_seconds"] = float(params["hop_seconds"])
    if params.get("min_score"):
        changes["min_score"] = float(params["min_score"])
    if changes:
        import dataclasses

        s = dataclasses.replace(s, **changes)
    return s


def plan_bound(probed: float | None, chunk: float, max_seconds: float) -> float:
    """Seconds of input a job's plan may cover: the container's duration (and one chunk more,
    in case it is an estimate) when it reports one, never more than ``max_seconds``."""
    if probed is None or not math.isfinite(probed) or probed < 0:
        return max_seconds
    return min(max_seconds, probed + chunk)


def spans_for(params: dict[str, Any], bound: float) -> list[tuple[float, float | None]]:
    """The recording spans a job's AudD parameters select, within the first ``bound`` seconds
    (at most one span per ``chunk_seconds`` of it: finite whatever the parameters)."""
    return chunk_spans(
        skip_first=float(params.get("skip_first_seconds") or 0),
        chunk=float(params.get("chunk_seconds") or 12.0),
        every=int(params.get("every") or 0),
        skip=int(params.get("skip") or 0),
        limit=int(params.get("limit") or 0),
        duration=bound,
    )


def run_job(
    jobs: JobStore,
    db: Path,
    job_id: str,
    workers: int | None,
    stop: threading.Event | None = None,
    *,
    max_seconds: float,
    owner: str | None = None,
    lease_seconds: float = JOB_LEASE_SECONDS,
    max_attempts: int | None = None,
) -> None:
    """Claim one job as ``owner`` and analyse it to its end (blocking), recording progress and
    the outcome; at most the first ``max_seconds`` of its audio are analysed. Returns at once
    when the job is gone, ended, or held by another runner (this node's or another's). The
    lease is renewed by the caller (``JobRunner``); a run that finds it lost stops."""
    who = owner or new_node_id()
    job = jobs.get(job_id)
    if job is None or job.finished:
        return
    if not jobs.claim(job_id, who, lease_seconds=lease_seconds, max_attempts=max_attempts):
        return
    try:
        path = jobs.audio.checkout(job_id)
    except Exception as exc:  # the catalog failed under the copy: the job fails, the runner goes on
        log.exception("job audio unreadable", extra={"fields": {"job": job_id}})
        message = f"internal error: the job's audio could not be read ({type(exc).__name__})"
        jobs.finish(job_id, who, status=FAILED, error_code=1000, error_message=message)
        return
    if path is None:
        jobs.finish(job_id, who, status=FAILED, error_code=1000, error_message="the job's audio is gone.")
        return
    try:
        _analyse(jobs, db, job, path, workers, stop, who, max_seconds)
    finally:
        jobs.audio.release(path)


def _analyse(
    jobs: JobStore,
    db: Path,
    job: Job,
    path: Path,
    workers: int | None,
    stop: threading.Event | None,
    owner: str,
    max_seconds: float,
) -> None:
    """The scan of a claimed job, and its outcome written while ``owner`` holds it."""
    from soundmark.audio.decode import probe_duration

    probed = probe_duration(path)
    total = probed if probed is None else min(probed, max_seconds)
    bound = plan_bound(probed, float(job.params.get("chunk_seconds") or 12.0), max_seconds)
    last = [0.0]
    lost = threading.Event()  # another runner holds the job now: stop, write nothing

    def progress(done: float, _total: float | None) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            frac = min(0.99, done / total) if total else 0.0
            try:
                if not jobs.progress(job.id, owner, round(frac, 4), round(done, 2)):
                    lost.set()
            except sqlite3.Error:  # progress is only shown; the lease is what counts
                log.warning("job progress not recorded", exc_info=True, extra={"fields": {"job": job.id}})

    def should_stop() -> bool:
        return lost.is_set() or (stop is not None and stop.is_set())

    outcome: dict[str, Any]
    try:
        res = scan(path, db, scan_settings_for(job.params), workers=workers, spans=spans_for(job.params, bound),
                   total_seconds=total, progress=progress, should_stop=should_stop)  # fmt: skip
    except ScanCancelled:
        if lost.is_set():
            log.warning("job lease lost; another runner has it", extra={"fields": {"job": job.id, "owner": owner}})
        else:  # the node is stopping: the job is queued again with its audio, for any runner
            jobs.stop_attempt(job.id, owner)
        return
    except SoundmarkError as exc:
        outcome = {"status": FAILED, "error_code": exc.code, "error_message": str(exc)}
    except Exception as exc:  # a failed job must not take the runner down
        log.exception("job failed", extra={"fields": {"job": job.id}})
        outcome = {"status": FAILED, "error_code": 1000, "error_message": f"internal error ({type(exc).__name__})"}
    else:
        result: dict[str, Any] = {
            "segments": [s.to_dict() for s in res.segments],
            "duration": round(res.duration, 3),
            "scanned": [[round(a, 3), round(b, 3)] for a, b in res.scanned],
            "wall_seconds": round(res.wall_seconds, 3),
        }
        outcome = {"status": DONE, "progress": 1.0, "audio_seconds": round(res.duration, 2), "result": result}
    if not jobs.finish(job.id, owner, **outcome):
        log.warning("job outcome dropped: its lease was lost", extra={"fields": {"job": job.id, "owner": owner}})


class JobRunner:
    """Runs jobs in the background (``max_jobs`` at once) as node ``node_id``, renews the leases
    of the jobs it runs every quarter ``lease_seconds``, and lets requests wait for them."""

    def __init__(
        self,
        jobs: JobStore,
        db: Path,
        *,
        max_jobs: int,
        scan_workers: int,
        max_seconds: float,
        node_id: str | None = None,
        lease_seconds: float = JOB_LEASE_SECONDS,
        max_attempts: int | None = None,
    ):
        self.jobs = jobs
        self.db = db
        self.max_seconds = max_seconds
        self.node_id = node_id or new_node_id()
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.workers = scan_workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="soundmark-job")
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._stop = threading.Event()
        self._runs = 0  # runs in progress (leases to renew)
        self._runs_lock = threading.Lock()
        self._renewer = threading.Thread(target=self._renew_leases, name="soundmark-job-lease", daemon=True)
        self._renewer.start()

    def submit(self, job_id: str) -> asyncio.Future[None]:
        """Queue ``job_id``; the returned future resolves when this runner is done with it (the
        job ended, or another runner holds it)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiters[job_id] = done

        def run() -> None:
            try:
                if not self._stop.is_set():
                    self._run(job_id)
            finally:
                loop.call_soon_threadsafe(self._resolve, job_id)

        self._pool.submit(run)
        return done

    def _run(self, job_id: str) -> None:
        with self._runs_lock:
            self._runs += 1
        try:
            run_job(self.jobs, self.db, job_id, self.workers, self._stop, max_seconds=self.max_seconds,
                    owner=self.node_id, lease_seconds=self.lease_seconds, max_attempts=self.max_attempts)  # fmt: skip
        finally:
            with self._runs_lock:
                self._runs -= 1

    def _renew_leases(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            if not self._runs:
                continue
            try:
                self.jobs.renew(self.node_id, self.lease_seconds)
            except Exception:  # the next round tries again; a run that lost its lease stops itself
                log.exception("job lease renewal failed", extra={"fields": {"node": self.node_id}})

    def _resolve(self, job_id: str) -> None:
        fut = self._waiters.pop(job_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def close(self) -> None:
        """Stop: running scans end at their next chunk and are queued again for any runner."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._renewer.join()
