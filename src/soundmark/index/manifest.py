"""The segment index's bookkeeping in the catalog file: which segments are live, which tracks
are removed.

Owned by ``index/segments.py`` and used by nothing else: it shares the store's SQLite connection,
so registering a segment commits in the same transaction as the catalog rows of its tracks.

Tables (created by the catalog's first migration, ``catalog/sqlite.py``; their layout is part of
every store on disk):
  segments    name TEXT PRIMARY KEY, postings, tracks, bytes INTEGER, created_at REAL (unix s)
  tombstones  track_id INTEGER PRIMARY KEY — removed tracks whose postings still sit in segments
              until compaction rewrites them
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from soundmark.catalog.sql import Connection


class SegmentManifest:
    """Reads and writes of the two tables; writes join the caller's open transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def version(self) -> int:
        """Changes whenever another connection commits (``PRAGMA data_version``); cheap to poll."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def names(self) -> list[str]:
        """Live segments, oldest first."""
        return [r[0] for r in self.conn.execute("SELECT name FROM segments ORDER BY created_at, name")]

    def tombstones(self) -> list[int]:
        return [int(r[0]) for r in self.conn.execute("SELECT track_id FROM tombstones ORDER BY track_id")]

    def snapshot(self) -> tuple[list[str], list[int]]:
        """Live segments and tombstones read in one transaction, so they agree."""
        self.conn.execute("BEGIN")
        try:
            return self.names(), self.tombstones()
        finally:
            self.conn.execute("COMMIT")

    def add(self, name: str, postings: int, tracks: int, size: int) -> None:
        self.conn.execute(
            "INSERT INTO segments(name, postings, tracks, bytes, created_at) VALUES (?, ?, ?, ?, ?)",
            (name, postings, tracks, size, time.time()),
        )

    def drop(self, names: Iterable[str]) -> None:
        self.conn.executemany("DELETE FROM segments WHERE name=?", [(n,) for n in names])

    def add_tombstones(self, track_ids: Iterable[int]) -> None:
        self.conn.executemany("INSERT OR IGNORE INTO tombstones(track_id) VALUES (?)", [(int(i),) for i in track_ids])

    def clear_tombstones(self, track_ids: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM tombstones WHERE track_id=?", [(int(i),) for i in track_ids])
