"""Long-recording jobs: a scan with an id, progress and a result, kept in the catalog database.

A job's input audio sits in ``<db>/jobs/<id>.audio`` until the job ends. The runner analyses at
most ``max_jobs`` jobs at once (threads that drive ``match.segments.scan``, whose CPU work runs
in ``scan_workers`` worker processes) and writes progress and the result into the ``jobs`` table,
so a job outlives the request that created it and the server: on startup, queued and running jobs
whose audio is still there are queued again, the others are marked failed.

A job is claimed before it runs: one ``UPDATE ... WHERE status = 'queued'`` moves it to running,
so of two runners (threads, or ``serve --role jobs`` nodes on one store) given the same queued job
only one runs it; the other finds it claimed and leaves it.

Every start of a job is counted (``attempts``) before it runs, and given back when the server
stops it cleanly; a job that has been started ``max_attempts`` times without ever ending (it took
the server down, or the server died under it each time) is failed on the next startup instead of
resumed: no crash loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmark.catalog.sql import Connection, Row
from soundmark.catalog.writer import Database, LocalDatabase, read_async, write_async
from soundmark.errors import SoundmarkError
from soundmark.match.scan import ScanCancelled, ScanSettings, TrackSegment, chunk_spans, scan

log = logging.getLogger("soundmark.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
JOBS_DIR = "jobs"


@dataclass
class Job:
    id: str
    kind: str
    status: str
    source: str | None
    params: dict[str, Any]
    progress: float
    audio_seconds: float
    result: dict[str, Any] | None
    error_code: int | None
    error_message: str | None
    token_id: int | None
    created_at: float
    updated_at: float
    attempts: int = 0  # starts that have not (yet) reached an outcome

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    def segments(self) -> list[TrackSegment]:
        if not self.result:
            return []
        return [TrackSegment.from_dict(d) for d in self.result.get("segments", [])]


def row_to_job(row: Row) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], status=row["status"], source=row["source"],
        params=json.loads(row["params"]), progress=row["progress"], audio_seconds=row["audio_seconds"],
        result=json.loads(row["result"]) if row["result"] else None, error_code=row["error_code"],
        error_message=row["error_message"], token_id=row["token_id"], created_at=row["created_at"],
        updated_at=row["updated_at"], attempts=row["attempts"],
    )  # fmt: skip


class JobStore:
    """The ``jobs`` table of a store's catalog, safe across threads: through ``database`` (the
    server's writer and read pool) or, without one, a connection of its own. The event loop uses
    the ``a``-prefixed methods (awaited through the writer and the read pool); the others block
    (threads: the runner, the CLI), and the server's ``database`` refuses them on the loop."""

    def __init__(self, db: str | os.PathLike[str], database: Database | None = None):
        self.root = Path(db)
        self.dir = self.root / JOBS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._own: LocalDatabase | None = None
        if database is None:  # a connection of its own (it creates / migrates the schema)
            database = self._own = LocalDatabase(self.root)
        self._db: Database = database

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        return self._db.write(lambda c: c.execute(sql, args).rowcount)

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        rows: list[Row] = self._db.read(lambda c: c.conn.execute(sql, args).fetchall())
        return rows

    async def _arows(self, sql: str, args: tuple[Any, ...]) -> list[Row]:
        rows: list[Row] = await read_async(self._db, lambda c: c.conn.execute(sql, args).fetchall())
        return rows

    def audio_path(self, job_id: str) -> Path:
        return self.dir / f"{job_id}.audio"

    def create(self, kind: str, source: str | None, params: dict[str, Any], token_id: int | None = None) -> Job:
        job = self.create_bounded(kind, source, params, token_id)
        assert job is not None
        return job

    def create_bounded(
        self,
        kind: str,
        source: str | None,
        params: dict[str, Any],
        token_id: int | None = None,
        *,
        max_active: int | None = None,
    ) -> Job | None:
        """A new queued job; None (nothing created) when ``max_active`` jobs are queued or running
        already (counted and inserted in one transaction, so concurrent requests cannot both pass)."""
        job_id, write = _creation(kind, source, params, token_id, max_active)
        return self.get(job_id) if self._db.write(write) else None

    async def acreate_bounded(
        self,
        kind: str,
        source: str | None,
        params: dict[str, Any],
        token_id: int | None = None,
        *,
        max_active: int | None = None,
    ) -> Job | None:
        """``create_bounded`` from the event loop (the count and the insert in one write)."""
        job_id, write = _creation(kind, source, params, token_id, max_active)
        return await self.aget(job_id) if await write_async(self._db, write) else None

    def get(self, job_id: str) -> Job | None:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(rows[0]) if rows else None

    async def aget(self, job_id: str) -> Job | None:
        rows = await self._arows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return row_to_job(rows[0]) if rows else None

    def update(self, job_id: str, **fields: Any) -> None:
        self._write(*_update(job_id, fields))

    async def aupdate(self, job_id: str, **fields: Any) -> None:
        sql, args = _update(job_id, fields)
        await write_async(self._db, lambda c: c.execute(sql, args).rowcount)

    def active(self) -> list[Job]:
        rows = self._rows("SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created_at", ACTIVE)
        return [row_to_job(r) for r in rows]

    async def aactive(self) -> list[Job]:
        rows = await self._arows("SELECT * FROM jobs WHERE status IN (?, ?) ORDER BY created_at", ACTIVE)
        return [row_to_job(r) for r in rows]

    def count_active(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", ACTIVE)[0][0])

    def claim(self, job_id: str) -> bool:
        """Take the queued job ``job_id`` to run it: marked running and its start counted, in one
        statement that only a queued job passes. False when it is not queued (another runner
        claimed it, or it ended): the caller must not run it."""
        claimed = self._write(
            "UPDATE jobs SET status = ?, progress = 0, attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND status = ?",
            (RUNNING, time.time(), job_id, QUEUED),
        )
        return claimed == 1

    def stop_attempt(self, job_id: str) -> None:
        """The server stopped ``job_id`` cleanly: queued again, and that start does not count."""
        self._write(
            "UPDATE jobs SET status = ?, progress = 0, attempts = MAX(0, attempts - 1), updated_at = ? WHERE id = ?",
            (QUEUED, time.time(), job_id),
        )

    def recover(self, max_attempts: int = 2) -> list[str]:
        """After a restart: jobs that were queued or running are queued again when their audio
        is still there (returned in order), failed otherwise — and failed too when they were
        already started ``max_attempts`` times without ending (a poison job)."""
        again = []
        for job in self.active():
            if job.attempts >= max_attempts:
                self.audio_path(job.id).unlink(missing_ok=True)
                self.update(job.id, status=FAILED, error_code=1000,
                            error_message=f"the job was started {job.attempts} times and the server stopped "
                            "during each run; it is not retried.")  # fmt: skip
                log.warning("poison job failed", extra={"fields": {"job": job.id, "attempts": job.attempts}})
            elif self.audio_path(job.id).exists():
                self.update(job.id, status=QUEUED, progress=0.0)
                again.append(job.id)
            else:
                self.update(job.id, status=FAILED, error_code=1000,
                            error_message="the server restarted and the job's audio is gone.")  # fmt: skip
        return again

    def purge(self, older_than_days: float) -> int:
        cutoff = time.time() - older_than_days * 86400
        return self._write("DELETE FROM jobs WHERE status IN (?, ?) AND updated_at < ?", (DONE, FAILED, cutoff))


def _creation(
    kind: str, source: str | None, params: dict[str, Any], token_id: int | None, max_active: int | None
) -> tuple[str, Callable[[Connection], bool]]:
    """A new job's id and the write function that inserts it (False: ``max_active`` reached)."""
    job_id = secrets.token_hex(12)
    now = time.time()

    def write(c: Connection) -> bool:
        if max_active is not None:
            active = int(c.execute("SELECT COUNT(*) FROM jobs WHERE status IN (?, ?)", ACTIVE).fetchone()[0])
            if active >= max_active:
                return False
        c.execute(
            "INSERT INTO jobs (id, kind, status, source, params, created_at, updated_at, token_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, kind, QUEUED, source, json.dumps(params), now, now, token_id),
        )
        return True

    return job_id, write


def _update(job_id: str, fields: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    if "result" in fields and fields["result"] is not None:
        fields["result"] = json.dumps(fields["result"])
    fields["updated_at"] = time.time()
    cols = ", ".join(f"{k} = ?" for k in fields)
    return f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id)


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
) -> None:
    """Analyse one job to its end (blocking), recording progress and the outcome; at most the
    first ``max_seconds`` of its audio are analysed."""
    job = jobs.get(job_id)
    if job is None or job.finished or not jobs.claim(job_id):
        return  # gone, ended, or claimed by another runner (this node's or another's)
    path = jobs.audio_path(job_id)
    from soundmark.audio.decode import probe_duration

    probed = probe_duration(path)
    total = probed if probed is None else min(probed, max_seconds)
    bound = plan_bound(probed, float(job.params.get("chunk_seconds") or 12.0), max_seconds)
    last = [0.0]

    def progress(done: float, _total: float | None) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            frac = min(0.99, done / total) if total else 0.0
            jobs.update(job_id, progress=round(frac, 4), audio_seconds=round(done, 2))

    try:
        res = scan(path, db, scan_settings_for(job.params), workers=workers, spans=spans_for(job.params, bound),
                   total_seconds=total, progress=progress,
                   should_stop=stop.is_set if stop is not None else None)  # fmt: skip
    except ScanCancelled:
        # The server is stopping: the job stays queued with its audio, resumed on the next start.
        jobs.stop_attempt(job_id)
        return
    except SoundmarkError as exc:
        jobs.update(job_id, status=FAILED, error_code=exc.code, error_message=str(exc))
    except Exception as exc:  # a failed job must not take the runner down
        log.exception("job failed", extra={"fields": {"job": job_id}})
        jobs.update(job_id, status=FAILED, error_code=1000, error_message=f"internal error ({type(exc).__name__})")
    else:
        result: dict[str, Any] = {
            "segments": [s.to_dict() for s in res.segments],
            "duration": round(res.duration, 3),
            "scanned": [[round(a, 3), round(b, 3)] for a, b in res.scanned],
            "wall_seconds": round(res.wall_seconds, 3),
        }
        jobs.update(job_id, status=DONE, progress=1.0, audio_seconds=round(res.duration, 2), result=result)
    path.unlink(missing_ok=True)


class JobRunner:
    """Runs jobs in the background (``max_jobs`` at once) and lets requests wait for them."""

    def __init__(self, jobs: JobStore, db: Path, *, max_jobs: int, scan_workers: int, max_seconds: float):
        self.jobs = jobs
        self.db = db
        self.max_seconds = max_seconds
        self.workers = scan_workers or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(max_workers=max_jobs, thread_name_prefix="soundmark-job")
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._stop = threading.Event()

    def submit(self, job_id: str) -> asyncio.Future[None]:
        """Queue ``job_id``; the returned future resolves when the job has ended."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._waiters[job_id] = done

        def run() -> None:
            try:
                if not self._stop.is_set():
                    run_job(self.jobs, self.db, job_id, self.workers, self._stop, max_seconds=self.max_seconds)
            finally:
                loop.call_soon_threadsafe(self._resolve, job_id)

        self._pool.submit(run)
        return done

    def _resolve(self, job_id: str) -> None:
        fut = self._waiters.pop(job_id, None)
        if fut is not None and not fut.done():
            fut.set_result(None)

    def close(self) -> None:
        """Stop: running scans end at their next chunk and stay queued for the next start."""
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
