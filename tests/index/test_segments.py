"""Contract tests of the segment index with synthetic postings (no audio involved)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from soundmark.catalog.models import TrackMeta
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import Hits
from soundmark.index.manifest import SegmentManifest
from soundmark.index.segments import SEGMENTS_DIR, SegmentIndex, max_tracks_for
from soundmark.store import NewTrack, Store

BIG_CAP = 1 << 30


def make_track(
    rng: np.random.Generator, n: int, *, hash_space: int = 3000, max_time: int = 5000, n_peaks: int = 40
) -> NewTrack:
    hashes = rng.integers(0, hash_space, n).astype(np.uint32)
    times = rng.integers(0, max_time + 1, n).astype(np.int32)
    frames = np.sort(rng.integers(0, max_time + 1, n_peaks))
    bins = rng.integers(0, 1024, n_peaks)
    peaks = np.stack([frames, bins], axis=1).astype(np.int32)
    return NewTrack(TrackMeta(title=f"t{n}"), 10.0, None, None, hashes, times, peaks)


def fixed_track(hashes: Sequence[int], times: Sequence[int] | None = None) -> NewTrack:
    h = np.asarray(hashes, dtype=np.uint32)
    t = np.asarray(times if times is not None else range(len(h)), dtype=np.int32)
    return NewTrack(TrackMeta(), 1.0, None, None, h, t, np.zeros((0, 2), dtype=np.int32))


def brute_force(
    postings: dict[int, NewTrack], query: np.ndarray, *, removed: set[int] = frozenset(), cap: int = BIG_CAP
) -> Counter[tuple[int, int, int]]:
    """(hash, track id, time) multiset the index must return for ``query``."""
    by_hash: dict[int, list[tuple[int, int]]] = {}
    for tid, t in postings.items():
        for h, tm in zip(t.hashes.tolist(), t.times.tolist(), strict=True):
            by_hash.setdefault(h, []).append((tid, tm))
    out: Counter[tuple[int, int, int]] = Counter()
    for h in query.tolist():
        found = by_hash.get(h, [])
        if len(found) > cap:  # the cap counts every stored posting of the hash
            continue
        out.update((h, tid, tm) for tid, tm in found if tid not in removed)
    return out


def as_counter(hits: Hits, query: np.ndarray) -> Counter[tuple[int, int, int]]:
    assert len(hits.hash_pos) == len(hits.track_ids) == len(hits.times)
    return Counter(
        zip(
            query[hits.hash_pos].astype(np.int64).tolist(),
            hits.track_ids.tolist(),
            hits.times.tolist(),
            strict=True,
        )
    )


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "db", FingerprintParams(), create=True)
    yield s
    s.close()


def fill(store: Store, rng: np.random.Generator, batches: Sequence[int]) -> dict[int, NewTrack]:
    """Commit ``batches`` (tracks per segment) of random tracks; returns id → track."""
    out: dict[int, NewTrack] = {}
    with store.writer() as w:
        for n in batches:
            tracks = [make_track(rng, int(rng.integers(50, 400))) for _ in range(n)]
            ids = w.commit(tracks)
            out.update(zip(ids, tracks, strict=True))
    return out


def query_hashes(rng: np.random.Generator, space: int = 3500, n: int = 800) -> np.ndarray:
    return np.unique(rng.integers(0, space, n)).astype(np.uint32)


def seg_dirs(store: Store) -> set[str]:
    return {d.name for d in (store.root / SEGMENTS_DIR).iterdir()}


def live_segments(store: Store) -> list[str]:
    """The live segments the store's index has loaded (the segment backend's own view)."""
    assert isinstance(store.index, SegmentIndex)
    return store.index.names


def tombstones(store: Store) -> list[int]:
    return SegmentManifest(store.catalog.conn).tombstones()


def test_lookup_matches_brute_force_across_segments(store: Store) -> None:
    rng = np.random.default_rng(1)
    tracks = fill(store, rng, [3, 1, 4, 2])
    assert store.index.stats().segments == 4
    assert store.index.postings() == sum(len(t.hashes) for t in tracks.values())
    for _ in range(3):
        q = query_hashes(rng)
        hits = store.index.lookup(q, BIG_CAP)
        assert hits.hash_pos.dtype == np.int64
        assert as_counter(hits, q) == brute_force(tracks, q)
    # A second reader sees the same.
    with Store(store.root, FingerprintParams()) as other:
        q = query_hashes(rng)
        assert as_counter(other.index.lookup(q, BIG_CAP), q) == brute_force(tracks, q)


def test_lookup_of_absent_and_extreme_hashes(store: Store) -> None:
    with store.writer() as w:
        (tid,) = w.commit([fixed_track([0, 2**32 - 1, 7], [3, 4, 5])])
    q = np.array([0, 1, 7, 2**32 - 2, 2**32 - 1], dtype=np.uint32)
    assert as_counter(store.index.lookup(q, BIG_CAP), q) == Counter([(0, tid, 3), (7, tid, 5), (2**32 - 1, tid, 4)])
    empty = store.index.lookup(np.array([1, 2], dtype=np.uint32), BIG_CAP)
    assert len(empty.hash_pos) == 0


def test_empty_store_lookup(store: Store) -> None:
    hits = store.index.lookup(np.array([1, 2, 3], dtype=np.uint32), 10)
    assert len(hits.hash_pos) == len(hits.track_ids) == len(hits.times) == 0
    assert store.index.track_peaks(1).shape == (0, 2)


def test_cap_drops_over_common_hashes_counted_across_segments(store: Store) -> None:
    with store.writer() as w:
        (a,) = w.commit([fixed_track([1, 1, 1, 2, 2, 2, 3])])
        (b,) = w.commit([fixed_track([1, 1, 2, 2, 2, 4])])
    q = np.array([1, 2, 3, 4], dtype=np.uint32)
    # Hash 1 has 5 postings, hash 2 has 6 (3 in each segment), hashes 3 and 4 one each.
    got = as_counter(store.index.lookup(q, 5), q)
    assert {h for h, _, _ in got} == {1, 3, 4}
    assert sum(n for (h, _, _), n in got.items() if h == 1) == 5
    assert got == brute_force({a: fixed_track([1, 1, 1, 2, 2, 2, 3]), b: fixed_track([1, 1, 2, 2, 2, 4])}, q, cap=5)
    assert {h for h, _, _ in as_counter(store.index.lookup(q, 6), q)} == {1, 2, 3, 4}
    assert {h for h, _, _ in as_counter(store.index.lookup(q, 4), q)} == {3, 4}
    assert len(store.index.lookup(q, 0).hash_pos) == 0


def test_cap_with_random_postings(store: Store) -> None:
    rng = np.random.default_rng(2)
    tracks = fill(store, rng, [2, 3])
    q = query_hashes(rng, n=2000)
    for cap in (1, 2, 3, 5):
        assert as_counter(store.index.lookup(q, cap), q) == brute_force(tracks, q, cap=cap)


def test_removed_tracks_vanish(store: Store) -> None:
    rng = np.random.default_rng(3)
    tracks = fill(store, rng, [3, 3])
    victims = {sorted(tracks)[1], sorted(tracks)[4]}
    reader = Store(store.root, FingerprintParams())
    try:
        with store.writer() as w:
            for tid in victims:
                assert w.remove(tid)
            assert not w.remove(10_000)
        assert tombstones(store) and set(tombstones(store)) == victims
        q = query_hashes(rng)
        expected = brute_force(tracks, q, removed=victims)
        # The writer's own store sees its removals at once ...
        assert as_counter(store.index.lookup(q, BIG_CAP), q) == expected
        # ... and another reader after refresh().
        reader.refresh()
        got = as_counter(reader.index.lookup(q, BIG_CAP), q)
        assert got == expected
        assert not {tid for _, tid, _ in got} & victims
        assert store.catalog.get_track(sorted(victims)[0]) is None
    finally:
        reader.close()


def test_track_peaks_round_trip(store: Store) -> None:
    rng = np.random.default_rng(4)
    tracks = fill(store, rng, [2, 1])
    big_frames = np.array([0, 1, 2**21, 2**22 - 1], dtype=np.int32)
    edge = NewTrack(
        TrackMeta(),
        1.0,
        None,
        None,
        np.array([9], dtype=np.uint32),
        np.array([0], dtype=np.int32),
        np.stack([big_frames, np.array([0, 1023, 512, 1])], axis=1).astype(np.int32),
    )
    with store.writer() as w:
        (eid,) = w.commit([edge])
    tracks[eid] = edge
    for tid, t in tracks.items():
        got = store.index.track_peaks(tid)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, t.peaks)
    assert store.index.track_peaks(max(tracks) + 1).shape == (0, 2)


def test_compaction_keeps_live_and_drops_tombstoned(store: Store) -> None:
    rng = np.random.default_rng(5)
    tracks = fill(store, rng, [2, 3, 1, 2])
    ids = sorted(tracks)
    victims = {ids[0], ids[3], ids[5]}
    old_reader = Store(store.root, FingerprintParams())
    try:
        old_names = set(live_segments(store))
        with store.writer() as w:
            for tid in victims:
                w.remove(tid)
            assert w.compact() == 4
        live = {tid: t for tid, t in tracks.items() if tid not in victims}
        assert store.index.stats().segments == 1
        assert not old_names & set(live_segments(store))
        assert tombstones(store) == []
        assert seg_dirs(store) == set(live_segments(store))  # old directories deleted
        assert store.index.postings() == sum(len(t.hashes) for t in live.values())
        q = query_hashes(rng, n=2000)
        assert as_counter(store.index.lookup(q, BIG_CAP), q) == brute_force(live, q)
        for tid, t in live.items():
            np.testing.assert_array_equal(store.index.track_peaks(tid), t.peaks)
        for tid in victims:
            assert store.index.track_peaks(tid).shape == (0, 2)
        (seg,) = live_segments(store)
        on_disk = np.load(store.root / SEGMENTS_DIR / seg / "tracks.npy")
        assert sorted(on_disk.tolist()) == sorted(live)

        # A reader opened before keeps its mapped (now unlinked) segments until it refreshes.
        stale = as_counter(old_reader.index.lookup(q, BIG_CAP), q)
        assert stale == brute_force(tracks, q)
        old_reader.refresh()
        assert as_counter(old_reader.index.lookup(q, BIG_CAP), q) == brute_force(live, q)

        # Nothing to do now; adding more then compacting again merges everything.
        with store.writer() as w:
            assert w.compact() == 0
            more = [make_track(rng, 100) for _ in range(2)]
            live.update(zip(w.commit(more), more, strict=True))
            assert w.compact() == 2
        assert store.index.stats().segments == 1
        assert as_counter(store.index.lookup(q, BIG_CAP), q) == brute_force(live, q)
    finally:
        old_reader.close()


def test_compaction_of_only_removed_tracks(store: Store) -> None:
    rng = np.random.default_rng(6)
    tracks = fill(store, rng, [2, 1])
    with store.writer() as w:
        for tid in tracks:
            w.remove(tid)
        w.compact()
    assert live_segments(store) == []
    assert seg_dirs(store) == set()
    q = query_hashes(rng)
    assert len(store.index.lookup(q, BIG_CAP).hash_pos) == 0


def test_max_tracks_for() -> None:
    assert max_tracks_for(0) == 1 << 31
    assert max_tracks_for(1) == 1 << 31
    assert max_tracks_for(2**21 - 1) == 1 << 11
    assert max_tracks_for(2**21) == 1 << 10
    assert max_tracks_for(2**31 - 1) == 2


def test_large_times_pack_and_split(store: Store) -> None:
    """Times up to 2**21 frames take 22 bits, leaving 10 bits (1024 tracks) for the 4-byte value
    code: 1030 such tracks are still one segment, in the 8-byte code (index/segment_layout.py)."""
    rng = np.random.default_rng(7)
    n = max_tracks_for(2**21) + 6
    tracks = []
    for i in range(n):
        times = rng.integers(0, 2**21 + 1, 4)
        if i in (0, n - 1, 1023, 1024):
            times[0] = 2**21
        tracks.append(fixed_track(rng.integers(0, 50_000, 4).tolist(), times.tolist()))
    with store.writer() as w:
        ids = w.commit(tracks)
    assert ids == sorted(ids) and len(set(ids)) == n
    assert store.index.stats().segments == 1  # no longer split at 1024 tracks
    (seg,) = live_segments(store)
    assert len(np.load(store.root / SEGMENTS_DIR / seg / "tracks.npy")) == n
    assert np.load(store.root / SEGMENTS_DIR / seg / "vals.npy", mmap_mode="r").dtype == np.uint64
    by_id = dict(zip(ids, tracks, strict=True))
    q = np.unique(np.concatenate([t.hashes for t in tracks]))
    assert as_counter(store.index.lookup(q, BIG_CAP), q) == brute_force(by_id, q)
    for tid in (ids[0], ids[1023], ids[1024], ids[-1]):
        assert int(by_id[tid].times[0]) == 2**21
        hits = store.index.lookup(by_id[tid].hashes[:1], BIG_CAP)
        assert (tid, int(by_id[tid].times[0])) in set(zip(hits.track_ids.tolist(), hits.times.tolist(), strict=False))


def test_orphan_segment_dirs_deleted_when_writer_opens(store: Store) -> None:
    rng = np.random.default_rng(8)
    tracks = fill(store, rng, [2])
    (live,) = live_segments(store)
    segs = store.root / SEGMENTS_DIR
    tmp = segs / ".tmp-seg-0123456789abcdef"
    tmp.mkdir()
    (tmp / "keys.npy").write_bytes(b"partial")
    unregistered = segs / "seg-fedcba9876543210"
    unregistered.mkdir()
    np.save(unregistered / "tracks.npy", np.array([99], dtype=np.int64))
    # Readers ignore them ...
    with Store(store.root, FingerprintParams()) as reader:
        assert live_segments(reader) == [live]
    assert tmp.exists() and unregistered.exists()
    # ... the next writer deletes them and keeps the live segment.
    with store.writer():
        pass
    assert seg_dirs(store) == {live}
    q = query_hashes(rng)
    store.refresh()
    assert as_counter(store.index.lookup(q, BIG_CAP), q) == brute_force(tracks, q)
