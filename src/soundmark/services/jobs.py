"""Enterprise (long-recording) jobs as a use case: open a job under the queue cap, make its
audio readable by every node and start it, wait for its end; and, on a node that runs jobs,
resume the jobs a stopped or dead runner left and pick up the jobs other nodes queued.

The runner (``soundmark.jobs.JobRunner``) exists only where the process role runs jobs (``jobs``,
``all``). A node without one (``api``) only accepts: it stores the audio where any job node can
read it (``job_audio.py``: the store directory on SQLite, the catalog on PostgreSQL), a ``jobs``
node picks the job up within ``JOB_PICKUP_SECONDS``, and a request that waits for its result
polls the job's row. A runner claims a job under a lease before it runs it (``job_store.py``),
so of any number of jobs nodes picking up the same job one runs it, and a job whose node died
is picked up again by another once the lease has run out. A jobs node that starts touches only
the jobs no live lease holds (``JobStore.recover``), so it may start while others run jobs.

Every database call of the request side is awaited (the writer and the read pool), or run in a
thread (the audio's copy into the catalog); ``resume``'s one-off clean-up at start runs in a thread.

The web app's Jobs pages read through the functions at the end (``recent_jobs``, ``job_states``,
``find_job``, ``tracklist``, ``tracklist_csv``), each run inside one read of the pool (``db.aread``): a page
of the jobs newest first, the progress of a few, a finished job's tracklist and its CSV.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from soundmark.audd.models import TracklistEntry
from soundmark.audd.presenter import tracklist_entry
from soundmark.catalog.sql import POSTGRESQL, SQLITE, dialect
from soundmark.catalog.sqlite import Catalog
from soundmark.jobs import FAILED, Job, JobRunner, JobStore, row_to_job
from soundmark.services.errors import ServiceError
from soundmark.settings import Settings

log = logging.getLogger("soundmark.jobs")

JOB_PICKUP_SECONDS = 1.0  # how soon a jobs node starts a job another node queued
STALE_CHECK_SECONDS = 60.0  # how often a jobs node looks for uploads that never completed
JOB_POLL_SECONDS = 0.5  # how often a request waiting on another node's job looks at it
MAX_JOBS_PAGE = 100  # jobs listed by one read of ``recent_jobs`` (and states asked of ``job_states``)
MAX_JOB_ID = 64  # characters: ids are 24 hex digits; anything longer names no job
# The columns of a job's tracklist as CSV (those of ``soundmark scan --csv``).


class JobService:
    def __init__(self, jobs: JobStore, runner: JobRunner | None, settings: Settings):
        self.jobs, self.runner, self._settings = jobs, runner, settings
        self._done: dict[str, asyncio.Future[None]] = {}  # jobs this process runs → their end
        self._submitted: set[str] = set()

    # --- the request side ---------------------------------------------------------------------
    async def open(self, kind: str, params: dict[str, Any], token_id: int | None) -> Job:
        """A new queued job, without its audio yet (not started until ``start``); ServiceError
        611 when ``max_queued_jobs`` jobs are already queued or running (counted and inserted in
        one transaction, so concurrent requests cannot both pass)."""
        cap = self._settings.max_queued_jobs
        job = await self.jobs.acreate_bounded(kind, None, params, token_id, max_active=cap)
        if job is None:
            raise ServiceError(611, "too many long-recording jobs are queued; retry later.")
        return job

    async def abandon(self, job_id: str, code: int, message: str) -> None:
        """The job's audio could not be put in place: it fails at once and its audio goes."""
        await asyncio.to_thread(self.jobs.discard_audio, job_id)
        await self.jobs.aupdate(job_id, status=FAILED, error_code=code, error_message=message)

    async def start(self, job_id: str, source: str) -> None:
        """The job's audio is at ``jobs.audio_path``: make it readable by every node
        (``JobStore.share_audio``), record where it came from — from then on the job may be
        claimed — and run it here when this node runs jobs (else a jobs node picks it up). When
        the audio cannot be shared, the job is abandoned and ServiceError 1000 raised."""
        try:
            await asyncio.to_thread(self.jobs.share_audio, job_id)
        except Exception as exc:
            log.exception("job audio not stored", extra={"fields": {"job": job_id}})
            message = f"the job's audio could not be stored ({type(exc).__name__})."
            await asyncio.shield(self.abandon(job_id, 1000, message))
            raise ServiceError(1000, message) from exc
        await self.jobs.aupdate(job_id, source=source)
        if self.runner is not None:
            self._submit(job_id)

    async def wait(self, job_id: str) -> Job:
        """The job once it has ended (done or failed)."""
        done = self._done.get(job_id)
        if done is not None:
            await asyncio.shield(done)
        while True:
            job = await self.jobs.aget(job_id)
            if job is None:
                raise ServiceError(1000, "the job disappeared.")
            if job.finished:
                return job
            await asyncio.sleep(JOB_POLL_SECONDS)

    async def get(self, job_id: str) -> Job | None:
        return await self.jobs.aget(job_id)

    # --- the runner side ----------------------------------------------------------------------
    async def resume(self) -> list[str]:
        """At start on a node that runs jobs: drop old finished jobs, queue again the jobs that
        a stopped or dead runner left (``JobStore.recover``: not those under a live lease),
        delete audio no active job owns, and run them here."""
        if self.runner is None:
            raise RuntimeError("resume() needs a job runner: this node's role does not run jobs")
        resumed = await asyncio.to_thread(self._recover)
        for job_id in resumed:
            self._submit(job_id)
        return resumed

    def _recover(self) -> list[str]:
        s = self._settings
        self.jobs.purge(s.job_keep_days)
        resumed = self.jobs.recover(s.job_max_attempts)
        self.jobs.audio.sweep(j.id for j in self.jobs.active())  # audio of jobs that ended or are gone
        return resumed

    async def pick_up(self, interval: float = JOB_PICKUP_SECONDS) -> None:
        """Every ``interval`` seconds, run the jobs that are free to claim: queued by any node
        (their audio in place), or left running by a node whose lease ran out (it died); every
        ``STALE_CHECK_SECONDS``, fail the uploads an accepting node never finished."""
        checked = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if time.monotonic() - checked >= STALE_CHECK_SECONDS:
                    checked = time.monotonic()
                    await asyncio.to_thread(self.jobs.fail_stale_uploads)
                runnable = await self.jobs.arunnable()
            except Exception:  # keep picking up whatever happened in one round
                log.exception("job pick-up failed")
                continue
            for job_id in runnable:
                if job_id not in self._submitted:
                    self._submit(job_id)

    def _submit(self, job_id: str) -> None:
        """Hand ``job_id`` to this node's runner (it claims the job when a thread is free, or
        finds another node holds it); once the runner is done with it, a later round may
        submit it again (another node's run of it died)."""
        assert self.runner is not None
        self._submitted.add(job_id)
        done = self.runner.submit(job_id)
        self._done[job_id] = done

        def forget(_: object) -> None:
            self._done.pop(job_id, None)
            self._submitted.discard(job_id)

        done.add_done_callback(forget)


# --- the web app's reads ----------------------------------------------------------------------
@dataclass(frozen=True)
class JobState:
    """What a list of jobs shows of one (its parameters and result are not read)."""

    id: str
    kind: str
    status: str
    source: str | None
    progress: float  # 0-1
    audio_seconds: float  # analysed so far (the recording's length once done)
    tracks: int  # tracklist entries, once done
    error_code: int | None
    error_message: str | None
    created_at: float
    updated_at: float

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


@dataclass(frozen=True)
class JobsPage:
    jobs: list[JobState]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


# The number of segments of a job's result (a JSON text column), without loading the result.
_TRACKS_SQL = {
    SQLITE: "COALESCE(json_array_length(result, '$.segments'), 0)",
    POSTGRESQL: "COALESCE(json_array_length(result::json -> 'segments'), 0)",
}


def _state_sql(c: Catalog) -> str:
    return (
        f"SELECT id, kind, status, source, progress, audio_seconds, {_TRACKS_SQL[dialect(c.conn)]},"
        " error_code, error_message, created_at, updated_at FROM jobs"
    )


def _state(row: Iterable[Any]) -> JobState:
    r = list(row)
    return JobState(
        id=str(r[0]), kind=str(r[1]), status=str(r[2]), source=r[3], progress=float(r[4]),
        audio_seconds=float(r[5]), tracks=int(r[6]), error_code=r[7], error_message=r[8],
        created_at=float(r[9]), updated_at=float(r[10]),
    )  # fmt: skip


def recent_jobs(c: Catalog, offset: int = 0, limit: int = 25) -> JobsPage:
    """The jobs newest first, ``limit`` (at most ``MAX_JOBS_PAGE``) from ``offset``."""
    limit = max(1, min(limit, MAX_JOBS_PAGE))
    offset = max(0, offset)
    total = int(c.conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    rows = c.conn.execute(_state_sql(c) + " ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
    return JobsPage([_state(r) for r in rows], total, offset, limit)


def job_states(c: Catalog, ids: Iterable[str]) -> list[JobState]:
    """The states of the jobs ``ids`` that exist (at most ``MAX_JOBS_PAGE`` of them asked)."""
    wanted = list(dict.fromkeys(i for i in ids if 0 < len(i) <= MAX_JOB_ID))[:MAX_JOBS_PAGE]
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    rows = c.conn.execute(_state_sql(c) + f" WHERE id IN ({marks})", wanted).fetchall()
    return [_state(r) for r in rows]


def find_job(c: Catalog, job_id: str) -> Job | None:
    """The job ``job_id`` with its parameters and result, or None."""
    if not 0 < len(job_id) <= MAX_JOB_ID:
        return None
    row = c.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row_to_job(row)


def tracklist(c: Catalog, job: Job) -> list[TracklistEntry]:
    """A finished job's tracklist in the recording's order, with the catalog's metadata of each
    track still there (a track removed since shows its id only)."""
    segments = sorted(job.segments(), key=lambda s: (s.start, s.end))
    ids = sorted({s.track_id for s in segments})
    tracks = {}
    for i in range(0, len(ids), 500):  # SQLite's bound on one statement's parameters
        tracks.update(c.get_tracks(ids[i : i + 500]))
    return [tracklist_entry(s, tracks.get(s.track_id)) for s in segments]
