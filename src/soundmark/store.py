"""The embedded store: one directory holding the catalog (SQLite) and the fingerprint index.

Readers open it and call ``refresh()`` to see new commits; one writer at a time (guarded by a
file lock) adds tracks in batches. The index is whatever ``index/factory.py`` opens (the segment
files on disk by default) and is used only through its ports (``index/base.py``).

A batch is committed in two steps so that nobody waits for the disk: first the index writes the
batch durably (segment files fsynced) with the track ids the catalog will give its tracks, then
one short SQLite transaction inserts the tracks and publishes the index write. The ids are known
before the transaction because only the writer-lock holder inserts tracks: it reads the next id
(``sqlite_sequence``) under the lock, and checks it again inside the transaction (if another
process inserted meanwhile, the write is discarded and redone with the new ids). A crash at any
point leaves every track either fully in or absent, and the unpublished write of an unfinished
batch is deleted by the next writer.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmark.catalog.models import SourceFile, TrackMeta
from soundmark.catalog.sql import POSTGRESQL, Connection, PgConnection, parse_pg_url
from soundmark.catalog.sqlite import (
    CATALOG_FILE,
    Catalog,
    catalog_exists,
    catalog_url,
    record_catalog_url,
)
from soundmark.errors import ParamsMismatchError, StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import FingerprintIndex, IndexBackend, IndexStats, IndexWriter, TrackPostings, Written
from soundmark.index.factory import open_index
from soundmark.index.policy import MergePolicyIndex
from soundmark.index.redis_url import parse_redis_url

LOCK_FILE = "write.lock"
# Optimistic commits (index written before the transaction) tried before one is made with the
# index written inside it; only a process inserting tracks without the writer lock makes one fail.
OPTIMISTIC_COMMITS = 3


@dataclass(frozen=True)
class NewTrack:
    """A fingerprinted track waiting to be committed."""

    meta: TrackMeta
    duration: float
    source: str | None
    content_hash: str | None
    hashes: np.ndarray
    times: np.ndarray
    peaks: np.ndarray


@dataclass(frozen=True)
class StoreInfo:
    tracks: int
    hours: float
    postings: int
    segments: int
    bytes_on_disk: int
    params_signature: str


def recorded_params(root: str | os.PathLike[str], base: FingerprintParams | None = None) -> FingerprintParams:
    """The fingerprint parameters the store at ``root`` was built with (its recorded index
    fields over ``base``'s query-only fields), so that every entry point serves the store it is
    given; ``base`` (default: this engine's) when the store is new or records none.

    Raises ParamsMismatchError when the store's hash layout version is not this engine's: such a
    store's hashes cannot be computed by this code, whatever its other parameters.
    """
    base = base or FingerprintParams()
    value = _read_meta(Path(root), "fingerprint_params")
    if value is None:
        return base
    stored = json.loads(value)
    if stored.get("hash_version") != base.hash_version:
        raise ParamsMismatchError(
            f"the store at {root} uses hash layout v{stored.get('hash_version')}, this soundmark computes "
            f"v{base.hash_version}: re-ingest the catalog into a new store"
        )
    names = {f.name for f in dataclasses.fields(FingerprintParams)}
    known = {k: v for k, v in stored.items() if k in names}
    return dataclasses.replace(base, **known)


def _pg_meta(url: str, key: str) -> str | None:
    """A value of the ``meta`` table of the PostgreSQL catalog at ``url`` (None: none, or no catalog)."""
    try:
        pg = PgConnection(url, readonly=True)
    except sqlite3.Error as exc:
        raise StoreError(str(exc)) from exc
    try:
        if not pg.execute("SELECT to_regclass('meta') IS NOT NULL").fetchall()[0][0]:
            return None
        row = pg.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        pg.close()
    return None if row is None else str(row[0])


def _read_meta(root: Path, key: str) -> str | None:
    """A value of the catalog's ``meta`` table, read without creating or migrating anything."""
    url = catalog_url(root)
    if url is not None:
        return _pg_meta(url, key)
    path = root / CATALOG_FILE
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:  # a catalog not yet migrated to having the meta table
        row = None
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _dir_bytes(root: Path) -> int:
    total = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total


class Store:
    """An opened store directory (read side; ``writer()`` gives the write side).

    ``index_backend`` names the fingerprint index (``index/factory.py``: "segments", the files
    of every store on disk; "memory" for tests). ``index_url`` (``Settings.index_url``) puts the
    index on a Redis Cluster instead: a new store records the URL in its catalog, so every later
    opener (CLI, server, worker processes) finds its index without being told; a URL given to a
    store that already records one replaces it (the cluster's addresses changed); a store whose
    tracks are in segment files refuses one.

    ``catalog_url`` (``Settings.catalog_url``, ``postgresql://...``) puts the catalog in
    PostgreSQL: the directory then holds only ``catalog.url`` (where the catalog is) and the
    writer's lock file, so that every node of a cluster opens the same catalog with its own
    ``--db DIR``. A shared catalog needs a shared index (``index_url``, or ``memory`` in tests).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        params: FingerprintParams,
        *,
        create: bool = False,
        index_backend: str = "segments",
        index_url: str | None = None,
        catalog_url: str | None = None,
    ):
        self.root = Path(root)
        self._refresh_lock = threading.RLock()
        self.params = params
        if catalog_url:
            use_catalog_url(self.root, catalog_url, create=create)
        exists = catalog_exists(self.root)
        if not exists and not create:
            raise StoreError(f"no soundmark store at {self.root} (create one with `soundmark add`)")
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.catalog = Catalog(self.root)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the catalog of {self.root}: {exc}") from exc
        try:
            self._check_params()
            url = self._index_url(index_url)
            backend = "redis" if url else index_backend
            if self.catalog.dialect == POSTGRESQL and backend == "segments":
                raise StoreError(
                    "a catalog in PostgreSQL needs an index every node can reach: set SOUNDMARK_INDEX_URL"
                    " (a Redis Cluster) too"
                )
            self._index: IndexBackend = open_index(backend, self.root, self.catalog, url=url)
            self.index: FingerprintIndex = self._index  # what matching reads; the writer gets the write port
            self.refresh()
        except BaseException:
            self.catalog.close()
            raise

    def close(self) -> None:
        self.catalog.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_params(self) -> None:
        sig = self.params.signature()
        stored = self.catalog.get_meta("fingerprint_signature")
        if stored is None:
            with self.catalog.transaction():
                if self.catalog.get_meta("fingerprint_signature") is None:
                    self.catalog.set_meta("fingerprint_signature", sig)
                    self.catalog.set_meta("fingerprint_params", json.dumps(self.params.index_fields()))
            stored = self.catalog.get_meta("fingerprint_signature")
        if stored != sig:
            raise ParamsMismatchError(
                f"the store at {self.root} was built with fingerprint parameters {stored}, "
                f"this soundmark uses {sig}: re-ingest the catalog into a new store"
            )

    def _index_url(self, given: str | None) -> str:
        """The Redis index URL this store uses ("" for its own files), recorded in the catalog."""
        recorded = self.catalog.get_meta("index_url")
        if not given or given == recorded:
            return recorded or ""
        if recorded is None and self.catalog.totals()[0] > 0:
            raise StoreError(
                f"the store at {self.root} keeps its index in its own files: unset SOUNDMARK_INDEX_URL "
                "to use it, or add the catalog to a new store"
            )
        if recorded is not None and self.catalog.totals()[0] > 0:
            try:
                moved = parse_redis_url(recorded).prefix != parse_redis_url(given).prefix
            except ValueError as exc:
                raise StoreError(str(exc)) from exc
            if moved:
                raise StoreError(f"the store at {self.root} keeps its index under {recorded}: keep that key prefix")
        with self.catalog.transaction():
            self.catalog.set_meta("index_url", given)
        return given

    def refresh(self, *, force: bool = False) -> None:
        """Show the index commits made since the last call (``force``: reload even if this
        connection saw no other commit, as a writer does after its own).

        One thread at a time: threads sharing this store's one SQLite connection could otherwise
        deadlock inside sqlite3 (a statement finalised with the GIL held while another thread's
        progress handler, holding the connection's mutex, waits for the GIL)."""
        with self._refresh_lock:
            self._index.refresh(force=force)

    def info(self) -> StoreInfo:
        self.refresh()
        n, hours = self.catalog.totals()
        stats = self.index.stats()
        return StoreInfo(
            tracks=n,
            hours=hours,
            postings=stats.postings,
            segments=stats.segments,
            bytes_on_disk=_dir_bytes(self.root),
            params_signature=self.params.signature(),
        )

    def index_stats(self) -> IndexStats:
        return self.index.stats()

    @contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        """Exclusive write access; waits for another writer to finish."""
        with open(self.root / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                w = StoreWriter(self, self._index)
                w.cleanup()
                yield w
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def use_catalog_url(root: str | os.PathLike[str], url: str, *, create: bool = True) -> None:
    """Record ``url`` as where the catalog of the store directory ``root`` lives (before anything
    reads the store's recorded parameters); a store with its own SQLite catalog refuses (its tracks
    would be left behind: ``soundmark migrate`` copies them). An empty ``url`` does nothing.
    Without ``create``, a directory that records no URL yet is only attached to a catalog that
    holds a store (a new node joining a cluster); else StoreError, as for a missing store."""
    if not url:
        return
    root = Path(root)
    try:
        where = parse_pg_url(url).display
    except ValueError as exc:
        raise StoreError(str(exc)) from exc
    joining = not create and catalog_url(root) != url and not (root / CATALOG_FILE).exists()
    if joining and _pg_meta(url, "fingerprint_signature") is None:
        raise StoreError(f"no soundmark store at {root} nor in {where} (create one with `soundmark add`)")
    root.mkdir(parents=True, exist_ok=True)
    if (root / CATALOG_FILE).exists():
        raise StoreError(
            f"the store at {root} keeps its catalog in {CATALOG_FILE}: unset SOUNDMARK_CATALOG_URL to use it,"
            " or copy it into PostgreSQL with `soundmark migrate`"
        )
    if catalog_url(root) != url:
        record_catalog_url(root, url)


class _IdsMoved(Exception):
    """The catalog's next track id changed between writing the index and the transaction."""


def _next_track_id(conn: Connection) -> int:
    """The id SQLite's AUTOINCREMENT gives the next track: one above every id ever used (the
    ``sqlite_sequence`` entry) and every id present."""
    row = conn.execute(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tracks'), 0),"
        " COALESCE((SELECT MAX(id) FROM tracks), 0)) + 1"
    ).fetchone()
    return int(row[0])


class StoreWriter:
    """The write side of a store; exists only while ``Store.writer()`` holds the writer lock."""

    def __init__(self, store: Store, index: IndexWriter):
        self.store = store
        self.catalog = store.catalog
        self.index = index

    def cleanup(self) -> None:
        """Delete index writes left by a writer that died before committing."""
        self.index.cleanup()

    def commit(
        self,
        tracks: Sequence[NewTrack],
        *,
        replacing: Sequence[int] = (),
        sources: Sequence[SourceFile | None] = (),
    ) -> list[int]:
        """Add ``tracks`` atomically (all or none), removing the ``replacing`` track ids in the
        same transaction; returns the new ids in order. ``sources[i]``, when given, is the file
        track ``i`` came from, remembered with it so a later add skips that file undecoded.

        The index write (the fsyncs) happens before the SQLite transaction, which then only
        inserts rows: other connections wait for the write lock for milliseconds, not for the disk.
        A write that fails (a full disk) raises ``StoreError`` and leaves nothing behind: the
        transaction rolls back and the index write is deleted.
        """
        if not tracks:
            return []
        reserved = self.catalog.reserve_track_ids(len(tracks))
        if reserved is not None:  # PostgreSQL: ids of our own, whoever else writes at the same time
            written = self._write_index(tracks, reserved)
            ids = self._commit_rows(tracks, replacing, sources, reserved, written, reserved=True)
            self.store.refresh(force=True)
            return ids
        for _ in range(OPTIMISTIC_COMMITS):
            first = _next_track_id(self.catalog.conn)
            written = self._write_index(tracks, first)
            try:
                ids = self._commit_rows(tracks, replacing, sources, first, written)
            except _IdsMoved:
                continue  # another process inserted tracks without the writer lock: redo
            break
        else:
            # Ids keep moving: write the index inside the transaction, where they cannot.
            ids = self._commit_rows(tracks, replacing, sources, None, None)
        self.store.refresh(force=True)
        return ids

    def _write_index(self, tracks: Sequence[NewTrack], first: int) -> Written:
        postings = [TrackPostings(first + i, t.hashes, t.times, t.peaks) for i, t in enumerate(tracks)]
        return self.index.write(postings)

    def _commit_rows(
        self,
        tracks: Sequence[NewTrack],
        replacing: Sequence[int],
        sources: Sequence[SourceFile | None],
        first: int | None,
        written: Written | None,
        *,
        reserved: bool = False,
    ) -> list[int]:
        """The short transaction: rows of ``tracks`` (ids from ``first``), the replaced tracks
        removed, ``written`` published. With ``written`` None the index is written in it.
        ``reserved``: ``first`` is a block ``reserve_track_ids`` handed out (inserted as given)."""
        try:
            with self.catalog.transaction():
                if reserved:
                    assert first is not None
                    start = first
                else:
                    start = _next_track_id(self.catalog.conn)
                if first is not None and start != first:
                    raise _IdsMoved
                for old in replacing:
                    if self.catalog.delete_track(old):
                        self.index.remove([old])
                ids = [
                    self.catalog.insert_track(
                        t.meta,
                        t.duration,
                        t.source,
                        t.content_hash,
                        len(t.hashes),
                        track_id=start + i if reserved else None,
                    )
                    for i, t in enumerate(tracks)
                ]
                if ids != list(range(start, start + len(tracks))):
                    raise _IdsMoved  # cannot happen while we hold the write lock; never commit it
                for tid, src in zip(ids, sources, strict=False):
                    if src is not None:
                        self.catalog.record_source(src.path, src.size, src.mtime_ns, src.sha256, tid)
                if written is None:
                    written = self._write_index(tracks, start)
                self.index.publish(written)
        except BaseException as exc:
            self.index.abort(written)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not commit to the catalog of {self.store.root}: {exc}") from exc
            raise
        return ids

    def remember_sources(self, known: Sequence[tuple[SourceFile, int]]) -> None:
        """Remember files found to hold the audio of stored tracks (duplicates, renamed copies)."""
        if not known:
            return
        try:
            with self.catalog.transaction():
                for src, tid in known:
                    if self.catalog.get_track(tid) is not None:
                        self.catalog.record_source(src.path, src.size, src.mtime_ns, src.sha256, tid)
        except sqlite3.Error as exc:
            raise StoreError(f"could not write to the catalog of {self.store.root}: {exc}") from exc

    def remove(self, track_id: int) -> bool:
        """Delete a track and hide its postings (their bytes go at the next ``compact``)."""
        try:
            with self.catalog.transaction():
                found = self.catalog.delete_track(track_id)
                if found:
                    self.index.remove([track_id])
        except BaseException:
            self.index.abort(None)
            raise
        self.store.refresh(force=True)
        return found

    def update_meta(self, track_id: int, meta: TrackMeta) -> None:
        with self.catalog.transaction():
            self.catalog.update_meta(track_id, meta)

    def compact(self, max_segments: int = 1) -> int:
        """Rewrite the index (dropping removed tracks) until at most ``max_segments`` units
        remain; returns how many were rewritten. The rewrite is fsynced before the short
        transaction that swaps it in; readers switch at their next refresh."""
        return self.index.compact(max_segments)

    def merge_by_policy(self) -> int:
        """After adds: let the index merge what its merge policy asks for (the segment index's
        tiered policy, ``index/policy.py``: O(log n) segments, each posting rewritten O(log n)
        times); a backend without segments has nothing to do. Returns how many were merged."""
        if isinstance(self.index, MergePolicyIndex):
            return self.index.merge_by_policy()
        return 0
