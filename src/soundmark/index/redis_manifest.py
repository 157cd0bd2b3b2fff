"""The Redis index's bookkeeping in the store's catalog: which tracks are published, which removed.

Owned by ``index/redis_cluster.py``. It shares the catalog's SQLite connection, so publishing a
batch commits in the same transaction as the catalog rows of its tracks: what Redis holds for a
track is visible only once this table lists it, and hidden again once it is marked removed.

Tables (created here on first use, ``IF NOT EXISTS``; the catalog's migrations do not know them):
  redis_index_tracks  track_id INTEGER PRIMARY KEY, slot INTEGER UNIQUE (the track's 32-bit number
                      inside the postings), part TEXT (the write that stored it), postings, bytes
                      INTEGER, removed INTEGER (1: tombstoned, purged by compaction), gen INTEGER
                      (the generation that last changed the row)
  redis_index_state   key TEXT PRIMARY KEY, value TEXT: "namespace" (this store's random id, part
                      of every Redis key), "generation" (bumped by every publish and removal)
                      and "layout" (the key layout of ``index/redis_keys.py`` the data was
                      written in; absent in stores of the first layout)
Readers poll the catalog's ``data_version`` (free), then the generation, then read only the rows whose
``gen`` is newer than what they hold.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from soundmark.catalog.sql import SQLITE, Connection, dialect
from soundmark.catalog.sqlite import data_version

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS redis_index_tracks (track_id INTEGER PRIMARY KEY, slot INTEGER NOT NULL UNIQUE,"
    " part TEXT NOT NULL, postings INTEGER NOT NULL, bytes INTEGER NOT NULL, removed INTEGER NOT NULL DEFAULT 0,"
    " gen INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS redis_index_tracks_gen ON redis_index_tracks(gen)",
    "CREATE INDEX IF NOT EXISTS redis_index_tracks_part ON redis_index_tracks(part)",
    "CREATE TABLE IF NOT EXISTS redis_index_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class _Database(Protocol):
    conn: Connection

    def transaction(self) -> AbstractContextManager[Connection]: ...


def _has_tables(conn: Connection) -> bool:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {"redis_index_tracks", "redis_index_state"} <= tables


@dataclass(frozen=True)
class TrackRow:
    track_id: int
    slot: int
    part: str
    postings: int
    bytes: int
    removed: bool


class RedisManifest:
    """Reads and writes of the two tables; ``publish``/``remove`` join the caller's transaction."""

    def __init__(self, db: _Database, layout: str):
        self.conn = db.conn
        if dialect(self.conn) == SQLITE and not _has_tables(self.conn):  # PostgreSQL's schema has them
            with db.transaction():
                for sql in SCHEMA:
                    self.conn.execute(sql)
        if self._get("namespace") is None:
            with db.transaction():
                if self._get("namespace") is None:
                    self._set("namespace", secrets.token_hex(6))
                    self._set("generation", "0")
                    self._set("layout", layout)
        if self._get("layout") is None and self.conn.execute("SELECT 1 FROM redis_index_tracks").fetchone() is None:
            with db.transaction():  # nothing written in the old layout yet: this one it is
                self._set("layout", layout)

    @property
    def layout(self) -> str:
        """The key layout of this store's data ("1": the first, which recorded none)."""
        return self._get("layout") or "1"

    def _get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM redis_index_state WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO redis_index_state(key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def namespace(self) -> str:
        ns = self._get("namespace")
        assert ns is not None
        return ns

    def data_version(self) -> int:
        """Changes whenever another connection commits; cheap to poll."""
        return data_version(self.conn)

    def generation(self) -> int:
        return int(self._get("generation") or 0)

    def _bump(self) -> int:
        gen = self.generation() + 1
        self._set("generation", str(gen))
        return gen

    def changed_since(self, gen: int) -> tuple[int, list[TrackRow], bool]:
        """The generation now and the rows changed after ``gen``, read in one transaction, and
        whether they are every row instead (``True``: compaction forgot rows since ``gen``, so a
        reader that held ``gen`` may hold removed tracks it can no longer learn of: it starts over)."""
        self.conn.execute("BEGIN")
        try:
            now = self.generation()
            full = int(self._get("forgotten_at") or -1) > gen
            rows = self.conn.execute(
                "SELECT track_id, slot, part, postings, bytes, removed FROM redis_index_tracks WHERE gen > ?",
                (-1 if full else gen,),
            ).fetchall()
        finally:
            self.conn.execute("COMMIT")
        found = [TrackRow(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), bool(r[5])) for r in rows]
        return now, found, full

    def known(self, track_ids: Iterable[int]) -> list[int]:
        """Those of ``track_ids`` that a committed write already stored (live or removed)."""
        ids = [int(t) for t in track_ids]
        out: list[int] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            q = ",".join("?" * len(chunk))
            out += [
                int(r[0])
                for r in self.conn.execute(f"SELECT track_id FROM redis_index_tracks WHERE track_id IN ({q})", chunk)
            ]
        return out

    def parts(self) -> set[str]:
        return {str(r[0]) for r in self.conn.execute("SELECT DISTINCT part FROM redis_index_tracks")}

    def removed(self) -> list[TrackRow]:
        rows = self.conn.execute(
            "SELECT track_id, slot, part, postings, bytes FROM redis_index_tracks WHERE removed = 1 ORDER BY track_id"
        ).fetchall()
        return [TrackRow(int(r[0]), int(r[1]), str(r[2]), int(r[3]), int(r[4]), True) for r in rows]

    # --- inside the store's transaction -------------------------------------------------------
    def publish(self, rows: Sequence[TrackRow]) -> None:
        gen = self._bump()
        self.conn.executemany(
            "INSERT INTO redis_index_tracks(track_id, slot, part, postings, bytes, removed, gen)"
            " VALUES (?, ?, ?, ?, ?, 0, ?)",
            [(r.track_id, r.slot, r.part, r.postings, r.bytes, gen) for r in rows],
        )

    def remove(self, track_ids: Iterable[int]) -> None:
        ids = [(int(t),) for t in track_ids]
        if not ids:
            return
        gen = self._bump()
        self.conn.executemany(
            "UPDATE redis_index_tracks SET removed = 1, gen = ? WHERE track_id = ? AND removed = 0",
            [(gen, t) for (t,) in ids],
        )

    def forget(self, track_ids: Iterable[int]) -> None:
        """Drop the rows of removed tracks whose data compaction deleted, and record the
        generation it happened at (``forgotten_at``): a reader older than that reloads them all."""
        ids = [(int(t),) for t in track_ids]
        if not ids:
            return
        self.conn.executemany("DELETE FROM redis_index_tracks WHERE track_id = ? AND removed = 1", ids)
        self._set("forgotten_at", str(self._bump()))
