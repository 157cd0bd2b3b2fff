"""Where an enterprise job's input audio waits for the node that runs it.

On an embedded (SQLite) store every node works in the one store directory, so the audio is a
file there, ``<db>/jobs/<id>.audio``: the accepting node writes it, the running node reads it and
deletes it once the job has ended. Kept so on SQLite (rather than in the ``job_audio`` table)
because nothing is gained by copying it: the file is already where every node of that store can
read it, and up to a GiB of chunks per job would grow the catalog file, which SQLite never gives
back without a VACUUM, and take turns with every other write of the server's one writer thread.

On a PostgreSQL catalog the nodes share nothing but the catalog (and the index), so the audio
goes into the catalog's ``job_audio(job_id, seq, data)`` table: the accepting node writes the file
into its own directory as on SQLite, then ``share`` copies it into rows of at most ``CHUNK_BYTES``,
each chunk in a write transaction of its own — the catalog's write lock serialises the writes of
every node, so it is never held for a whole upload — and deletes the file. An upload is bounded
before it gets here (``max_enterprise_bytes``, 1 GiB by default, for the request body;
``max_enterprise_download_bytes``, 512 MiB, for a ``url``), so a job has at most ~1024 chunks.
The running node copies the chunks into a temporary file of its own directory (the decoder reads
a file), ``CHUNKS_PER_READ`` at a time, and ``release`` deletes it after the run. The rows go in
the transaction that records the job's outcome (``delete_rows``), when an upload is abandoned, or
with the job itself (``ON DELETE CASCADE`` when it is purged).

A job's audio is complete once the job has a ``source`` (set after ``share`` returns), which is
why only such jobs are ever claimed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from soundmark.catalog.sql import Connection
from soundmark.catalog.writer import Database

CHUNK_BYTES = 1024 * 1024  # one job_audio row (and one write transaction) at most
CHUNKS_PER_READ = 4  # rows fetched by one read when a job node copies the audio out
AUDIO_SUFFIX = ".audio"  # <id>.audio: a job's audio as the accepting node received it
FETCH_SUFFIX = ".fetch"  # <id>.<random>.fetch: a job node's copy of shared audio, for one run


class JobAudio:
    """A store's job audio: files in ``folder`` only (``shared=False``, SQLite), or files in
    ``folder`` on their way into the catalog's ``job_audio`` rows and back (``shared=True``)."""

    def __init__(self, folder: Path, db: Database, *, shared: bool):
        self.dir = folder
        self._db = db
        self.shared = shared

    def path(self, job_id: str) -> Path:
        """Where the accepting node puts a job's audio (and, on SQLite, where it stays)."""
        return self.dir / f"{job_id}{AUDIO_SUFFIX}"

    # --- the accepting node -------------------------------------------------------------------
    def share(self, job_id: str) -> None:
        """Make the audio at ``path(job_id)`` readable by every node: on a shared catalog it is
        copied into ``job_audio`` (one transaction per chunk) and the file deleted; on SQLite the
        file already is. On failure the rows written so far are deleted and the error raised."""
        if not self.shared:
            return
        src = self.path(job_id)
        try:
            with src.open("rb") as fh:
                seq = 0
                while chunk := fh.read(CHUNK_BYTES):
                    self._db.write(_insert(job_id, seq, chunk))
                    seq += 1
        except BaseException:
            with contextlib.suppress(Exception):
                self._db.write(lambda c: delete_rows(c, job_id))
            raise
        src.unlink(missing_ok=True)

    def discard(self, job_id: str) -> None:
        """The job will never run (its upload failed): its file and rows go."""
        self.path(job_id).unlink(missing_ok=True)
        if self.shared:
            self._db.write(lambda c: delete_rows(c, job_id))

    # --- the running node ---------------------------------------------------------------------
    def exists(self, job_id: str) -> bool:
        if not self.shared:
            return self.path(job_id).exists()
        rows = self._db.read(
            lambda cat: cat.conn.execute("SELECT seq FROM job_audio WHERE job_id = ? AND seq = 0", (job_id,)).fetchall()
        )
        return bool(rows)

    def checkout(self, job_id: str) -> Path | None:
        """A file holding the job's audio for one run, None when it is gone. On SQLite that is
        the job's own file; on a shared catalog a temporary copy (give it to ``release``)."""
        if not self.shared:
            path = self.path(job_id)
            return path if path.exists() else None
        tmp = self.dir / f"{job_id}.{secrets.token_hex(4)}{FETCH_SUFFIX}"
        seq = 0
        try:
            with tmp.open("wb") as out:
                while rows := self._chunks(job_id, seq):
                    for row_seq, data in rows:
                        if int(row_seq) != seq:  # a gap: never written whole (cannot pass share)
                            raise OSError(f"job {job_id}: audio chunk {seq} is missing")
                        out.write(bytes(data))
                        seq += 1
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if seq == 0:
            tmp.unlink(missing_ok=True)
            return None
        return tmp

    def _chunks(self, job_id: str, first: int) -> list[tuple[int, bytes]]:
        sql = "SELECT seq, data FROM job_audio WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT ?"
        rows = self._db.read(lambda cat: cat.conn.execute(sql, (job_id, first, CHUNKS_PER_READ)).fetchall())
        return [(r[0], r[1]) for r in rows]

    def release(self, path: Path) -> None:
        """The run of a ``checkout`` ended: a temporary copy is deleted (the job's file is not)."""
        if path.name.endswith(FETCH_SUFFIX):
            path.unlink(missing_ok=True)

    def unlink_local(self, job_id: str) -> None:
        """The job has ended: its file (SQLite's shared copy) goes; its rows went with the outcome."""
        self.path(job_id).unlink(missing_ok=True)

    # --- clean-up at a job node's start -------------------------------------------------------
    def sweep(self, active: Iterable[str]) -> None:
        """Delete what no queued or running job owns: files left in this node's folder (a crash
        during an upload or a run) and, on a shared catalog, the rows of ended jobs."""
        live = set(active)
        for f in list(self.dir.glob(f"*{AUDIO_SUFFIX}")) + list(self.dir.glob(f"*{FETCH_SUFFIX}")):
            if f.name.split(".", 1)[0] not in live:
                with contextlib.suppress(OSError):
                    os.unlink(f)
        if self.shared:
            ended = "SELECT id FROM jobs WHERE status NOT IN ('queued', 'running')"
            self._db.write(lambda c: c.execute(f"DELETE FROM job_audio WHERE job_id IN ({ended})").rowcount)


def _insert(job_id: str, seq: int, chunk: bytes) -> Callable[[Connection], None]:
    def write(c: Connection) -> None:
        c.execute("INSERT INTO job_audio (job_id, seq, data) VALUES (?, ?, ?)", (job_id, seq, chunk))

    return write


def delete_rows(c: Connection, job_id: str) -> int:
    """Delete a job's chunks inside the caller's write transaction (no rows on SQLite)."""
    return int(c.execute("DELETE FROM job_audio WHERE job_id = ?", (job_id,)).rowcount)
