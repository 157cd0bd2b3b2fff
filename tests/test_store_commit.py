"""How a commit meets SQLite: the index is fsynced before the write transaction, never inside it.

While the writer waits for the disk, another connection (the API server counting a request, a
second process) must be able to take SQLite's write lock at once. Each test blocks the segment
backend's directory fsync on a ``threading.Event`` in a real store on disk and, while the writer
is parked there, takes ``BEGIN IMMEDIATE`` on a connection with no busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from soundmark.audio.decode import decode
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE
from soundmark.errors import StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index import segments
from soundmark.index.base import TrackPostings
from soundmark.index.manifest import SegmentManifest
from soundmark.index.segments import SEGMENTS_DIR
from soundmark.ingest import IngestItem, ingest
from soundmark.match.recognizer import Recognizer
from soundmark.store import NewTrack, Store

PARAMS = FingerprintParams()
WAIT = 60.0  # seconds a test waits for the other thread before it declares it stuck


def _track(rng: np.random.Generator, n: int = 200) -> NewTrack:
    hashes = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    times = np.sort(rng.integers(0, 5000, n)).astype(np.int32)
    peaks = np.stack([np.arange(40), rng.integers(0, 400, 40)], axis=1).astype(np.int32)
    return NewTrack(TrackMeta(title=f"t{n}"), 10.0, None, None, hashes, times, peaks)


class ParkedFsync:
    """Makes the first directory fsync of a segment write wait until ``release()``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.reached = threading.Event()
        self._release = threading.Event()
        self.calls = 0
        original = segments._fsync_dir

        def fsync_dir(path: Path) -> None:
            self.calls += 1
            if self.calls == 1:
                self.reached.set()
                assert self._release.wait(WAIT), "the test never released the fsync"
            original(path)

        monkeypatch.setattr(segments, "_fsync_dir", fsync_dir)

    def release(self) -> None:
        self._release.set()


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _take_write_lock(db: Path, sql: str, args: tuple[object, ...] = ()) -> None:
    """One write transaction on a fresh connection that does not wait for the lock at all."""
    conn = sqlite3.connect(db / CATALOG_FILE, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # 'database is locked' if the writer held the lock
        conn.execute(sql, args)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _join(t: threading.Thread, out: dict[str, object]) -> object:
    t.join(WAIT)
    assert not t.is_alive(), "the writer did not finish"
    if "error" in out:
        raise AssertionError("the writer failed") from out["error"]  # type: ignore[arg-type]
    return out["result"]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db", PARAMS, create=True)
    yield s
    s.close()


def _lookup_ids(store: Store, track: NewTrack) -> set[int]:
    hits = store.index.lookup(np.unique(track.hashes), 1 << 30)
    return set(hits.track_ids.tolist())


def _seg_dirs(store: Store) -> set[str]:
    return {d.name for d in (store.root / SEGMENTS_DIR).iterdir()}


def test_commit_fsyncs_before_its_sqlite_write_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    tracks = [_track(rng), _track(rng, 300)]
    parked = ParkedFsync(monkeypatch)

    def commit() -> list[int]:
        with store.writer() as w:
            return w.commit(tracks)

    t, out = _in_thread(commit)
    try:
        assert parked.reached.wait(WAIT), "the commit never reached the segment fsync"
        _take_write_lock(store.root, "INSERT INTO meta(key, value) VALUES ('probe', 'taken during the fsync')")
        # Nothing of the batch is visible while its files are being made durable.
        with Store(store.root, PARAMS) as reader:
            assert reader.info().tracks == 0 and reader.index.postings() == 0
    finally:
        parked.release()
    ids = _join(t, out)
    assert isinstance(ids, list) and len(ids) == 2
    assert store.catalog.get_meta("probe") == "taken during the fsync"
    for tid, track in zip(ids, tracks, strict=True):
        assert store.catalog.get_track(tid) is not None
        assert tid in _lookup_ids(store, track)
        np.testing.assert_array_equal(store.index.track_peaks(tid), track.peaks)


def test_compaction_fsyncs_before_its_swap_transaction(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    tracks = [_track(rng) for _ in range(3)]
    with store.writer() as w:
        ids = [w.commit([t])[0] for t in tracks]
        w.remove(ids[0])
    assert store.index.stats().segments == 3
    parked = ParkedFsync(monkeypatch)

    def compact() -> int:
        with store.writer() as w:
            return w.compact()

    t, out = _in_thread(compact)
    try:
        assert parked.reached.wait(WAIT), "the compaction never reached the segment fsync"
        _take_write_lock(store.root, "INSERT INTO meta(key, value) VALUES ('probe', 'taken during compaction')")
    finally:
        parked.release()
    assert _join(t, out) == 3
    assert store.catalog.get_meta("probe") == "taken during compaction"
    assert store.index.stats().segments == 1 and SegmentManifest(store.catalog.conn).tombstones() == []
    assert _lookup_ids(store, tracks[0]) == set()
    for tid, track in zip(ids[1:], tracks[1:], strict=True):
        assert tid in _lookup_ids(store, track)
    assert _seg_dirs(store) == set(SegmentManifest(store.catalog.conn).names())


def test_ids_taken_by_another_process_meanwhile_are_not_reused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The segment holds the ids read before the fsync; a track inserted by a connection that
    ignores the writer lock moves them, and the commit notices, rewrites and stays consistent."""
    rng = np.random.default_rng(3)
    with store.writer() as w:
        (before,) = w.commit([_track(rng)])
    tracks = [_track(rng), _track(rng)]
    parked = ParkedFsync(monkeypatch)

    def commit() -> list[int]:
        with store.writer() as w:
            return w.commit(tracks)

    t, out = _in_thread(commit)
    try:
        assert parked.reached.wait(WAIT)
        _take_write_lock(
            store.root,
            "INSERT INTO tracks(title, duration, n_hashes, added_at) VALUES ('intruder', 1.0, 0, 0)",
        )
    finally:
        parked.release()
    ids = _join(t, out)
    intruder = store.catalog.conn.execute("SELECT id FROM tracks WHERE title = 'intruder'").fetchone()[0]
    assert intruder == before + 1  # the id the parked segment had been written with
    assert isinstance(ids, list) and ids == [intruder + 1, intruder + 2]
    for tid, track in zip(ids, tracks, strict=True):
        assert _lookup_ids(store, track) == {tid}
        got = store.catalog.get_track(tid)
        assert got is not None and got.n_hashes == len(track.hashes)
    assert store.index.track_peaks(intruder).shape == (0, 2)
    # The discarded first write left no directory behind.
    assert _seg_dirs(store) == set(SegmentManifest(store.catalog.conn).names())
    assert store.index.stats().segments == 2


def test_a_commit_that_fails_after_the_fsync_leaves_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    with store.writer() as w:
        (kept,) = w.commit([_track(rng)])
    live = _seg_dirs(store)

    def failing_insert(*args: object, **kwargs: object) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    track = _track(rng)
    with store.writer() as w:
        monkeypatch.setattr(w.catalog, "insert_track", failing_insert)
        with pytest.raises(StoreError, match=r"could not commit to the catalog.*disk I/O error"):
            w.commit([track])
    assert _seg_dirs(store) == live  # the fsynced segment was deleted again
    assert store.info().tracks == 1 and _lookup_ids(store, track) == set()
    monkeypatch.undo()
    with store.writer() as w:
        (again,) = w.commit([track])
    assert again == kept + 1 and _lookup_ids(store, track) == {again}


def test_an_unpublished_write_is_invisible_and_cleaned_up(store: Store) -> None:
    """What a writer killed between the fsync and the commit leaves (see also test_crash.py)."""
    rng = np.random.default_rng(5)
    with store.writer() as w:
        w.commit([_track(rng)])
        orphan = _track(rng)
        w.index.write([TrackPostings(999, orphan.hashes, orphan.times, orphan.peaks)])
    assert len(_seg_dirs(store)) == 2
    with Store(store.root, PARAMS) as reader:
        assert _lookup_ids(reader, orphan) == set() and reader.index.stats().segments == 1
        with reader.writer():
            pass  # the next writer deletes the orphan
        assert _seg_dirs(reader) == set(SegmentManifest(reader.catalog.conn).names())


def test_a_store_on_the_memory_backend(tmp_path: Path, pieces: list) -> None:
    """The factory's seam: the same store, ingest and recognizer on another backend."""
    with Store(tmp_path / "db", PARAMS, create=True, index_backend="memory") as store:
        report = ingest(store, [IngestItem(p.path, TrackMeta()) for p in pieces[:3]], processes=1)
        assert len(report.added) == 3 and report.failures == []
        assert store.index.stats().segments == 0 and store.index.postings() > 0
        assert not (store.root / SEGMENTS_DIR).exists()
        ids = {path: tid for tid, path in report.added}
        sr = PARAMS.sample_rate
        excerpt = decode(pieces[1].path, sr)[10 * sr : 18 * sr]
        (best, *_) = Recognizer(store).recognize(excerpt)
        assert best.track.id == ids[str(pieces[1].path)]
        with store.writer() as w:
            assert w.remove(best.track.id)
            assert w.compact() == 0
        assert all(m.track.id != best.track.id for m in Recognizer(store).recognize(excerpt))


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown index backend"):
        Store(tmp_path / "db", PARAMS, create=True, index_backend="cassandra")
