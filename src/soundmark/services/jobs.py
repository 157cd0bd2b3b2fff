"""Enterprise (long-recording) jobs as a use case: open a job under the queue cap, start it once
its audio is in place, wait for its end; and, on a node that runs jobs, resume the jobs a
restart interrupted and pick up the jobs other nodes queued.

The runner (``soundmark.jobs.JobRunner``) exists only where the process role runs jobs (``jobs``,
``all``). A node without one (``api``) only queues: a ``jobs`` node picks its jobs up within
``JOB_PICKUP_SECONDS``, and a request that waits for its result polls the job's row. A runner
claims a job before it runs it (``JobStore.claim``), so two jobs nodes picking up the same queued
job run it once. A jobs node that starts queues again every job marked running (``recover``: it
cannot tell another node's live run from a dead server's), so start a jobs node while no other
runs jobs on the store, or a job running elsewhere is run a second time.

Every database call of the request side is awaited (the writer and the read pool); only
``resume``'s one-off clean-up at start runs in a thread.

The web app's Jobs pages read through the functions at the end (``recent_jobs``, ``job_states``,
``find_job``, ``tracklist``, ``tracklist_csv``), each run inside one read of the pool (``db.aread``): a page
of the jobs newest first, the progress of a few, a finished job's tracklist and its CSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from soundmark.audd.models import TracklistEntry
from soundmark.audd.presenter import tracklist_entry
from soundmark.catalog.sqlite import Catalog
from soundmark.jobs import FAILED, QUEUED, Job, JobRunner, JobStore, row_to_job
from soundmark.services.errors import ServiceError
from soundmark.settings import Settings

log = logging.getLogger("soundmark.jobs")

JOB_PICKUP_SECONDS = 1.0  # how soon a jobs node starts a job another node queued
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
        """The job's audio could not be put in place: it fails at once and its file goes."""
        await asyncio.to_thread(self.jobs.audio_path(job_id).unlink, missing_ok=True)
        await self.jobs.aupdate(job_id, status=FAILED, error_code=code, error_message=message)

    async def start(self, job_id: str, source: str) -> None:
        """The job's audio is in place (``jobs.audio_path``): record where it came from and run
        it here when this node runs jobs (else a jobs node picks it up)."""
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
        """At start on a node that runs jobs: drop old finished jobs, queue again the jobs a
        restart interrupted (``JobStore.recover``), delete audio no job owns, and run them."""
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
        live = set(resumed)
        for f in self.jobs.dir.glob("*.audio"):  # audio of jobs that no longer exist
            if f.stem not in live:
                with contextlib.suppress(OSError):
                    os.unlink(f)
        return resumed

    async def pick_up(self, interval: float = JOB_PICKUP_SECONDS) -> None:
        """Run the jobs other nodes queued (their audio in place), every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            try:
                active = await self.jobs.aactive()
            except Exception:  # keep picking up whatever happened in one round
                log.exception("job pick-up failed")
                continue
            self._submitted &= {j.id for j in active}
            for job in active:
                if job.status == QUEUED and job.source is not None and job.id not in self._submitted:
                    self._submit(job.id)

    def _submit(self, job_id: str) -> None:
        assert self.runner is not None
        self._submitted.add(job_id)
        done = self.runner.submit(job_id)
        self._done[job_id] = done
        done.add_done_callback(lambda _: self._done.pop(job_id, None))


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


_STATE_SQL = (
    "SELECT id, kind, status, source, progress, audio_seconds,"
    " COALESCE(json_array_length(result, '$.segments'), 0), error_code, error_message, created_at, updated_at"
    " FROM jobs"
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
    rows = c.conn.execute(_STATE_SQL + " ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, offset)).fetchall()
    return JobsPage([_state(r) for r in rows], total, offset, limit)


def job_states(c: Catalog, ids: Iterable[str]) -> list[JobState]:
    """The states of the jobs ``ids`` that exist (at most ``MAX_JOBS_PAGE`` of them asked)."""
    wanted = list(dict.fromkeys(i for i in ids if 0 < len(i) <= MAX_JOB_ID))[:MAX_JOBS_PAGE]
    if not wanted:
        return []
    marks = ",".join("?" * len(wanted))
    rows = c.conn.execute(_STATE_SQL + f" WHERE id IN ({marks})", wanted).fetchall()
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
