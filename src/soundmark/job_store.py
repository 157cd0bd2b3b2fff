"""The ``jobs`` table of the catalog: a job's row, its claim by one runner, its lease, its outcome.

Claims and leases. A node runs a job only after claiming it: one conditional ``UPDATE`` sets
``owner`` (the node's id), ``lease_until`` (now + ``JOB_LEASE_SECONDS``) and status running,
``WHERE`` the job is queued or running, its audio complete (``source`` set), and it has no owner
or its owner's lease ran out. Every write transaction of every node takes the catalog's one write
lock (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL ``BEGIN`` plus the adapter's advisory lock,
``catalog/sql.py``), so that statement is an atomic claim: for this catalog the equivalent of
``SELECT ... FOR UPDATE SKIP LOCKED`` (and PostgreSQL re-checks the ``WHERE`` of a row another
transaction updated concurrently even without the lock). Of any number of runners given the
same job, one runs it. The runner renews its leases while it runs them (``renew``); the progress
and outcome writes check ``owner`` too, so a node that lost its lease (stalled past it) learns
so and writes nothing. Lease times are the database's clock (``_now_sql``), not the nodes':
the clocks of several machines need not agree.

Every start of a job is counted (``attempts``) when it is claimed, and given back when the node
stops it cleanly (``stop_attempt``); a job that has been started ``max_attempts`` times without
ever ending (it took its node down, or the node died under it each time) is failed when next
claimed, or by ``recover`` at a node's start, instead of run: no crash loop across the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from soundmark.catalog.sql import POSTGRESQL, Connection, Row, dialect
from soundmark.catalog.sqlite import catalog_url
from soundmark.catalog.writer import Database, LocalDatabase, read_async, write_async
from soundmark.job_audio import JobAudio, delete_rows
from soundmark.match.scan import TrackSegment

log = logging.getLogger("soundmark.jobs")

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
JOBS_DIR = "jobs"
JOB_LEASE_SECONDS = 20.0  # a claim holds this long unless renewed (a dead node's jobs wait this long)
STALE_UPLOAD_SECONDS = 3600.0  # a job whose audio never finished arriving is failed after this
_POISON = "the job was started {n} times and the server stopped during each run; it is not retried."


def new_node_id() -> str:
    """An id for one process start of a node (the ``owner`` of the jobs it claims)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _now_sql(c: Connection) -> str:
    """The database's clock as unix seconds, an SQL expression (leases of several machines)."""
    if dialect(c) == POSTGRESQL:
        return "extract(epoch from clock_timestamp())::double precision"
    return "((julianday('now') - 2440587.5) * 86400.0)"


def _free_sql(c: Connection) -> str:
    """An active job no live lease holds (queued, or its runner's lease ran out)."""
    return f"status IN ('queued', 'running') AND (owner IS NULL OR lease_until < {_now_sql(c)})"


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
    owner: str | None = None  # the node that runs it (or ran it last)

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
        updated_at=row["updated_at"], attempts=row["attempts"], owner=row["owner"],
    )  # fmt: skip


class JobStore:
    """The ``jobs`` table of a store's catalog (and its jobs' audio, ``audio``), safe across
    threads: through ``database`` (the server's writer and read pool) or, without one, a
    connection of its own. The event loop uses the ``a``-prefixed methods (awaited through the
    writer and the read pool); the others block (threads: the runner, the CLI), and the server's
    ``database`` refuses them on the loop."""

    def __init__(self, db: str | os.PathLike[str], database: Database | None = None):
        self.root = Path(db)
        self.dir = self.root / JOBS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._own: LocalDatabase | None = None
        if database is None:  # a connection of its own (it creates / migrates the schema)
            database = self._own = LocalDatabase(self.root)
        self._db: Database = database
        self.audio = JobAudio(self.dir, database, shared=catalog_url(self.root) is not None)

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
        """Where the accepting node puts a job's audio before ``share_audio``."""
        return self.audio.path(job_id)

    def share_audio(self, job_id: str) -> None:
        """The audio at ``audio_path`` becomes readable by every node (``JobAudio.share``)."""
        self.audio.share(job_id)

    def discard_audio(self, job_id: str) -> None:
        self.audio.discard(job_id)

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

    async def arunnable(self) -> list[str]:
        """Ids of the jobs a runner may claim now, oldest first: audio complete, and queued or
        left by a runner whose lease ran out."""

        def read(cat: Any) -> list[str]:
            sql = f"SELECT id FROM jobs WHERE source IS NOT NULL AND {_free_sql(cat.conn)} ORDER BY created_at, id"
            return [str(r[0]) for r in cat.conn.execute(sql).fetchall()]

        ids: list[str] = await read_async(self._db, read)
        return ids

    # --- claims and leases --------------------------------------------------------------------
    def claim(
        self,
        job_id: str,
        owner: str | None = None,
        *,
        lease_seconds: float = JOB_LEASE_SECONDS,
        max_attempts: int | None = None,
    ) -> bool:
        """Take ``job_id`` to run it as ``owner``: marked running under a lease of
        ``lease_seconds`` and its start counted, by one conditional ``UPDATE`` that only a free
        job with its audio in place passes (see the module's docstring). False when another
        runner holds it, it ended, or it is gone: the caller must not run it. With
        ``max_attempts``, a job already started that many times is failed instead (its audio
        deleted) and False returned."""
        who = owner or new_node_id()

        def write(c: Connection) -> str:
            free = _free_sql(c)
            row = c.execute(f"SELECT attempts FROM jobs WHERE id = ? AND source IS NOT NULL AND {free}", (job_id,))
            found = row.fetchone()
            if found is None:
                return "taken"
            if max_attempts is not None and int(found[0]) >= max_attempts:
                c.execute(
                    f"UPDATE jobs SET status = ?, lease_until = 0, error_code = 1000, error_message = ?, updated_at = ?"
                    f" WHERE id = ? AND {free}",
                    (FAILED, _POISON.format(n=int(found[0])), time.time(), job_id),
                )
                delete_rows(c, job_id)
                return "poison"
            claimed = c.execute(
                f"UPDATE jobs SET status = ?, owner = ?, lease_until = {_now_sql(c)} + ?, progress = 0,"
                f" attempts = attempts + 1, updated_at = ? WHERE id = ? AND source IS NOT NULL AND {free}",
                (RUNNING, who, float(lease_seconds), time.time(), job_id),
            ).rowcount
            return "claimed" if claimed == 1 else "taken"

        outcome = self._db.write(write)
        if outcome == "poison":
            self.audio.unlink_local(job_id)
            log.warning("poison job failed", extra={"fields": {"job": job_id, "max_attempts": max_attempts}})
        return outcome == "claimed"

    def renew(self, owner: str, lease_seconds: float = JOB_LEASE_SECONDS) -> int:
        """Extend the leases of every job ``owner`` runs; how many it still holds."""
        return self._db.write(
            lambda c: c.execute(
                f"UPDATE jobs SET lease_until = {_now_sql(c)} + ? WHERE owner = ? AND status = ?",
                (float(lease_seconds), owner, RUNNING),
            ).rowcount
        )

    def progress(self, job_id: str, owner: str, progress: float, audio_seconds: float) -> bool:
        """Record a run's progress; False when ``owner`` no longer holds the job (stop the run)."""
        held = self._write(
            "UPDATE jobs SET progress = ?, audio_seconds = ?, updated_at = ? WHERE id = ? AND owner = ? AND status = ?",
            (progress, audio_seconds, time.time(), job_id, owner, RUNNING),
        )
        return held == 1

    def finish(self, job_id: str, owner: str, **fields: Any) -> bool:
        """Record the outcome of ``owner``'s run (``status`` done or failed, and what goes with
        it) and delete the job's audio, in one transaction; False (nothing written) when
        ``owner`` no longer holds the job."""
        fields["lease_until"] = 0.0
        sql, args = _update(job_id, fields)
        guarded = sql + " AND owner = ? AND status = ?"

        def write(c: Connection) -> bool:
            if c.execute(guarded, (*args, owner, RUNNING)).rowcount != 1:
                return False
            delete_rows(c, job_id)
            return True

        if not self._db.write(write):
            return False
        self.audio.unlink_local(job_id)
        return True

    def stop_attempt(self, job_id: str, owner: str | None = None) -> None:
        """The node stopped ``job_id`` cleanly: queued again, free for any runner, and that start
        does not count (with ``owner``: only while ``owner`` still holds it)."""
        sql = (
            "UPDATE jobs SET status = ?, owner = NULL, lease_until = 0, progress = 0,"
            " attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, updated_at = ? WHERE id = ?"
        )
        if owner is None:
            self._write(sql, (QUEUED, time.time(), job_id))
        else:
            self._write(sql + " AND owner = ?", (QUEUED, time.time(), job_id, owner))

    def recover(self, max_attempts: int = 2) -> list[str]:
        """At a job node's start: the active jobs no live lease holds (their runner stopped or
        died) are queued again when their audio is still there (returned in order), failed
        otherwise — and failed too when they were already started ``max_attempts`` times without
        ending (a poison job). A job another node runs now (live lease) is left alone, and so is
        one whose audio is still arriving (``fail_stale_uploads``)."""
        again = []
        self.fail_stale_uploads()
        for job in self.active():
            if job.source is None:
                continue
            if job.attempts >= max_attempts:
                if self._fail_free(job.id, _POISON.format(n=job.attempts)):
                    log.warning("poison job failed", extra={"fields": {"job": job.id, "attempts": job.attempts}})
            elif self.audio.exists(job.id):
                if self._requeue_free(job.id):
                    again.append(job.id)
            else:
                self._fail_free(job.id, "the server restarted and the job's audio is gone.")
        return again

    def fail_stale_uploads(self, older_than: float = STALE_UPLOAD_SECONDS) -> int:
        """Fail the jobs whose audio never finished arriving (the accepting node died during the
        upload or its copy into the catalog) ``older_than`` seconds after they were opened: they
        would hold a place in the queue for ever. Their chunks go in the same transaction."""
        cutoff = time.time() - older_than
        stale = "SELECT id FROM jobs WHERE status = ? AND source IS NULL AND created_at < ?"

        def write(c: Connection) -> int:
            c.execute(f"DELETE FROM job_audio WHERE job_id IN ({stale})", (QUEUED, cutoff))
            return int(
                c.execute(
                    "UPDATE jobs SET status = ?, error_code = 1000, error_message = ?, updated_at = ?"
                    " WHERE status = ? AND source IS NULL AND created_at < ?",
                    (FAILED, "the job's audio never finished arriving.", time.time(), QUEUED, cutoff),
                ).rowcount
            )

        return self._db.write(write)

    def _fail_free(self, job_id: str, message: str) -> bool:
        def write(c: Connection) -> bool:
            failed = c.execute(
                f"UPDATE jobs SET status = ?, lease_until = 0, error_code = 1000, error_message = ?, updated_at = ?"
                f" WHERE id = ? AND {_free_sql(c)}",
                (FAILED, message, time.time(), job_id),
            ).rowcount
            if failed:
                delete_rows(c, job_id)
            return bool(failed)

        if not self._db.write(write):
            return False
        self.audio.unlink_local(job_id)
        return True

    def _requeue_free(self, job_id: str) -> bool:
        return bool(
            self._db.write(
                lambda c: c.execute(
                    f"UPDATE jobs SET status = ?, owner = NULL, lease_until = 0, progress = 0, updated_at = ?"
                    f" WHERE id = ? AND {_free_sql(c)}",
                    (QUEUED, time.time(), job_id),
                ).rowcount
            )
        )

    def purge(self, older_than_days: float) -> int:
        """Delete the jobs that ended ``older_than_days`` ago (their audio rows go with them:
        ``ON DELETE CASCADE``, foreign keys being on in both engines)."""
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
