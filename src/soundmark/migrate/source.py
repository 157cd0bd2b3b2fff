"""The store being migrated, opened so that nothing of it can change: read-only, under its writer lock.

``soundmark migrate`` promises that the source is never changed, so it is not opened as a ``Store``
(which migrates an old catalog and records parameters): its catalog is a read-only SQLite
connection, its segment index is opened over that connection through the index factory, and the
store's writer lock (``write.lock``) is held *shared* for the whole copy, so no ``soundmark add``,
removal or compaction changes the tracks or deletes a segment while they are read (readers, the
server's lookups, token counters, go on). A catalog older than this soundmark's schema is refused
rather than migrated: open it once with this version (``soundmark info --db DIR``) first.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from soundmark.catalog.sqlite import CATALOG_FILE, MIGRATIONS, Catalog, catalog_url
from soundmark.errors import StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import FingerprintIndex, TrackPostingsReader
from soundmark.index.factory import open_index
from soundmark.store import LOCK_FILE, recorded_params


class SourceStore:
    """An embedded store (SQLite catalog, segment index) opened for reading only."""

    catalog: Catalog
    index: FingerprintIndex
    reader: TrackPostingsReader

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if catalog_url(self.root) is not None:
            raise StoreError(f"the store at {self.root} keeps its catalog in PostgreSQL already: nothing to migrate")
        if not (self.root / CATALOG_FILE).exists():
            raise StoreError(f"no soundmark store at {self.root}")
        self.params: FingerprintParams = recorded_params(self.root)
        self._lock = self._take_lock()
        try:
            self.catalog = Catalog(self.root, readonly=True)
        except Exception:
            self._release()
            raise
        try:
            self._open_index()
        except BaseException:
            self.close()
            raise

    def _take_lock(self) -> int | None:
        """Hold the writer lock shared (waiting for a writer at work to finish); None without a lock file."""
        path = self.root / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def _release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def _open_index(self) -> None:
        version = int(self.catalog.conn.execute("PRAGMA user_version").fetchone()[0])
        if version != len(MIGRATIONS):
            raise StoreError(
                f"the catalog of {self.root} is at schema version {version}, this soundmark's is {len(MIGRATIONS)}:"
                f" open it once with this soundmark (`soundmark info --db {self.root}`) and migrate again"
            )
        if self.catalog.get_meta("index_url"):
            raise StoreError(
                f"the store at {self.root} keeps its index on a Redis cluster: migrate copies stores whose"
                " index is in their own segment files"
            )
        index = open_index("segments", self.root, self.catalog)
        index.refresh(force=True)
        if not isinstance(index, TrackPostingsReader):  # the segment backend is one: a guard for the types
            raise StoreError(f"the index of {self.root} cannot give back its tracks' postings")
        self.index = index
        self.reader = index

    def track_ids(self) -> list[int]:
        """Every track id of the catalog, ascending."""
        return [int(r[0]) for r in self.catalog.conn.execute("SELECT id FROM tracks ORDER BY id")]

    def next_track_id(self) -> int:
        """The id the source would give its next track: above every id it ever used."""
        row = self.catalog.conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tracks'), 0),"
            " COALESCE((SELECT MAX(id) FROM tracks), 0)) + 1"
        ).fetchone()
        return int(row[0])

    def close(self) -> None:
        try:
            self.catalog.close()
        finally:
            self._release()

    def __enter__(self) -> SourceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
