"""The embedded store: one directory holding the catalog (SQLite) and the index (segments).

Readers open it and call ``refresh()`` to see new commits; one writer at a time (guarded by a
file lock) adds tracks in batches. A batch is committed by writing its segment durably first
and then, in one SQLite transaction, inserting its tracks and registering the segment: a crash
at any point leaves every track either fully in or absent, and the orphaned segment directory
of an unfinished batch is deleted by the next writer.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmark.catalog.models import SourceFile, TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE, Catalog
from soundmark.errors import ParamsMismatchError, StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import IndexStats, TrackPostings
from soundmark.index.segments import SegmentIndex, max_tracks_for

LOCK_FILE = "write.lock"


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
    path = Path(root) / CATALOG_FILE
    if not path.exists():
        return base
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint_params'").fetchone()
    except sqlite3.OperationalError:  # a catalog not yet migrated to having the meta table
        row = None
    finally:
        conn.close()
    if row is None:
        return base
    stored = json.loads(row[0])
    if stored.get("hash_version") != base.hash_version:
        raise ParamsMismatchError(
            f"the store at {root} uses hash layout v{stored.get('hash_version')}, this soundmark computes "
            f"v{base.hash_version}: re-ingest the catalog into a new store"
        )
    names = {f.name for f in dataclasses.fields(FingerprintParams)}
    known = {k: v for k, v in stored.items() if k in names}
    return dataclasses.replace(base, **known)


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
    """An opened store directory (read side; ``writer()`` gives the write side)."""

    def __init__(self, root: str | os.PathLike[str], params: FingerprintParams, *, create: bool = False):
        self.root = Path(root)
        self.params = params
        exists = (self.root / CATALOG_FILE).exists()
        if not exists and not create:
            raise StoreError(f"no soundmark store at {self.root} (create one with `soundmark add`)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.root)
        self._check_params()
        self.index = SegmentIndex(self.root)
        self._version = -1
        self.refresh()

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

    def refresh(self, *, force: bool = False) -> None:
        """Load segments and tombstones committed since the last call.

        ``PRAGMA data_version`` only changes for commits of *other* connections, so a writer
        reloads with ``force=True`` after its own commits.
        """
        for attempt in range(5):
            version = self.catalog.data_version()
            if version == self._version and not force:
                return
            try:
                self.index.load(*self.catalog.index_snapshot())
            except StoreError:
                # A compaction committed meanwhile and deleted segments we were about to open:
                # read the catalog again (unless nothing changed: then the store is damaged).
                if attempt == 4 or self.catalog.data_version() == version:
                    raise
                force = True
                continue
            self._version = version
            return

    def info(self) -> StoreInfo:
        self.refresh()
        n, hours = self.catalog.totals()
        return StoreInfo(
            tracks=n,
            hours=hours,
            postings=self.index.postings(),
            segments=len(self.index.names),
            bytes_on_disk=_dir_bytes(self.root),
            params_signature=self.params.signature(),
        )

    def index_stats(self) -> IndexStats:
        return IndexStats(self.index.postings(), len(self.index.names), self.index.bytes())

    @contextmanager
    def writer(self) -> Iterator[StoreWriter]:
        """Exclusive write access; waits for another writer to finish."""
        with open(self.root / LOCK_FILE, "a+") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                w = StoreWriter(self)
                w.cleanup()
                yield w
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


class StoreWriter:
    def __init__(self, store: Store):
        self.store = store
        self.catalog = store.catalog
        self.index = store.index

    def cleanup(self) -> None:
        """Delete segment directories left by a writer that died before committing."""
        self.index.delete_unlisted(self.catalog.segment_names())

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

        A write that fails (a full disk) raises ``StoreError`` and leaves nothing behind: the
        transaction rolls back and the new segment's files are deleted.
        """
        if not tracks:
            return []
        max_time = max(int(t.times.max()) if len(t.times) else 0 for t in tracks)
        limit = max_tracks_for(max_time)
        if len(tracks) > limit:
            ids: list[int] = []
            for start in range(0, len(tracks), limit):
                ids += self.commit(
                    tracks[start : start + limit],
                    replacing=replacing if not start else (),
                    sources=sources[start : start + limit],
                )
            return ids
        written: str | None = None
        try:
            with self.catalog.transaction():
                for old in replacing:
                    self.catalog.delete_track(old)
                ids = [
                    self.catalog.insert_track(t.meta, t.duration, t.source, t.content_hash, len(t.hashes))
                    for t in tracks
                ]
                for tid, src in zip(ids, sources, strict=False):
                    if src is not None:
                        self.catalog.record_source(src.path, src.size, src.mtime_ns, src.sha256, tid)
                postings = [TrackPostings(i, t.hashes, t.times, t.peaks) for i, t in zip(ids, tracks, strict=True)]
                info = self.index.write(postings)
                written = info.name
                self.catalog.add_segment(info.name, info.postings, info.tracks, info.bytes)
        except BaseException as exc:
            if written is not None:
                self.index.discard(written)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"could not commit to the catalog of {self.store.root}: {exc}") from exc
            raise
        self.store.refresh(force=True)
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
        with self.catalog.transaction():
            found = self.catalog.delete_track(track_id)
        self.store.refresh(force=True)
        return found

    def update_meta(self, track_id: int, meta: TrackMeta) -> None:
        with self.catalog.transaction():
            self.catalog.update_meta(track_id, meta)

    def compact(self, max_segments: int = 1) -> int:
        """Merge segments (dropping removed tracks) until at most ``max_segments`` remain.

        Returns the number of segments rewritten. Readers holding the old segments keep them
        (the files stay mapped after unlink) and switch at their next refresh.
        """
        self.store.refresh(force=True)
        names = self.index.names
        tombs = np.array(self.catalog.tombstones(), dtype=np.int64)
        if len(names) <= max_segments and not len(tombs):
            return 0
        merged: list[TrackPostings] = []
        for name in names:
            merged += self.index.read_postings(name, tombs)
        with self.catalog.transaction():
            infos = []
            if merged:
                max_time = max(int(p.times.max()) if len(p.times) else 0 for p in merged)
                step = max_tracks_for(max_time)
                for start in range(0, len(merged), step):
                    infos.append(self.index.write(merged[start : start + step]))
            self.catalog.drop_segments(names)
            for info in infos:
                self.catalog.add_segment(info.name, info.postings, info.tracks, info.bytes)
            self.catalog.clear_tombstones(tombs.tolist())
        self.store.refresh(force=True)
        self.cleanup()
        return len(names)
