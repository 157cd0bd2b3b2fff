"""The behaviour every fingerprint index backend must show, as one reusable test class.

A backend's test module subclasses ``IndexContract`` and provides a ``backend`` fixture returning
a fresh, empty ``Driver``: the backend (an ``IndexBackend``, both ports of ``index/base.py``) and
the SQLite catalog it was opened with, driven as ``Store`` drives them. ``add`` is the writer
port's atomic ``add``; ``remove`` tombstones tracks in a catalog transaction and refreshes.
Expected results come from a brute-force model of the postings, compared as multisets (backends
may order hits freely).

What the contract leaves to each backend: whether the per-hash cap and ``postings()`` still count
a removed track's postings before compaction (segments do), what a "segment" is for
``stats().segments`` and ``compact``, and reusing a removed track id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pytest

from soundmark.catalog.sqlite import Catalog
from soundmark.index.base import FingerprintIndex, Hits, IndexBackend, IndexWriter, TrackPostings

BIG_CAP = 1 << 30

Postings = Counter[tuple[int, int, int]]  # (hash, track id, time) → how many


class Driver:
    """A backend and its catalog, driven through the ports only."""

    def __init__(self, backend: IndexBackend, catalog: Catalog):
        self.backend = backend
        self.catalog = catalog
        backend.refresh(force=True)

    @property
    def index(self) -> FingerprintIndex:
        return self.backend

    @property
    def writer(self) -> IndexWriter:
        return self.backend

    def add(self, batch: Sequence[TrackPostings]) -> None:
        self.writer.add(batch)

    def remove(self, track_ids: Iterable[int]) -> None:
        with self.catalog.transaction():
            self.writer.remove(list(track_ids))
        self.index.refresh(force=True)


Backend = Driver


def track(
    track_id: int, hashes: Sequence[int], times: Sequence[int] | None = None, peaks: np.ndarray | None = None
) -> TrackPostings:
    h = np.asarray(hashes, dtype=np.uint32)
    t = np.asarray(times if times is not None else range(len(h)), dtype=np.int32)
    p = peaks if peaks is not None else np.zeros((0, 2), dtype=np.int32)
    return TrackPostings(track_id, h, t, p)


def random_track(
    rng: np.random.Generator, track_id: int, *, hash_space: int = 3000, max_time: int = 5000
) -> TrackPostings:
    n = int(rng.integers(50, 400))
    n_peaks = int(rng.integers(0, 60))
    frames = np.sort(rng.integers(0, max_time + 1, n_peaks))
    bins = rng.integers(0, 1024, n_peaks)
    return TrackPostings(
        track_id,
        rng.integers(0, hash_space, n).astype(np.uint32),
        rng.integers(0, max_time + 1, n).astype(np.int32),
        np.stack([frames, bins], axis=1).astype(np.int32).reshape(-1, 2),
    )


def expected(
    tracks: Mapping[int, TrackPostings],
    query: np.ndarray,
    *,
    removed: Iterable[int] = (),
    cap: int = BIG_CAP,
    budget: int | None = None,
) -> Postings:
    """What ``lookup(query, cap, budget)`` must return when no track was removed after being
    counted: under a budget, hashes taken from the rarest up, a whole length at a time, while
    their postings fit."""
    gone = set(removed)
    by_hash: dict[int, list[tuple[int, int]]] = {}
    for tid, t in tracks.items():
        if tid in gone:
            continue
        for h, tm in zip(t.hashes.tolist(), t.times.tolist(), strict=True):
            by_hash.setdefault(h, []).append((tid, tm))
    lists = {h: by_hash.get(h, []) for h in query.tolist()}
    kept = {h for h, found in lists.items() if len(found) <= cap}
    if budget is not None:
        spent, allowed = 0, set()
        for length in sorted({len(lists[h]) for h in kept}):
            same = {h for h in kept if len(lists[h]) == length}
            if spent + length * len(same) > budget:
                break
            spent += length * len(same)
            allowed |= same
        kept = allowed
    out: Postings = Counter()
    for h in kept:
        out.update((h, tid, tm) for tid, tm in lists[h])
    return out


def got(hits: Hits, query: np.ndarray) -> Postings:
    assert hits.hash_pos.dtype == hits.track_ids.dtype == hits.times.dtype == np.int64
    assert len(hits.hash_pos) == len(hits.track_ids) == len(hits.times)
    assert ((hits.hash_pos >= 0) & (hits.hash_pos < len(query))).all()
    return Counter(
        zip(
            query[hits.hash_pos].astype(np.int64).tolist(),
            hits.track_ids.tolist(),
            hits.times.tolist(),
            strict=True,
        )
    )


def query_hashes(rng: np.random.Generator, space: int = 3500, n: int = 800) -> np.ndarray:
    return np.unique(rng.integers(0, space, n)).astype(np.uint32)


def fill(
    backend: Backend, rng: np.random.Generator, batches: Sequence[int], first_id: int = 1
) -> dict[int, TrackPostings]:
    """Add ``batches`` (tracks per batch) of random tracks with consecutive ids."""
    out: dict[int, TrackPostings] = {}
    tid = first_id
    for n in batches:
        batch = [random_track(rng, tid + i) for i in range(n)]
        backend.add(batch)
        out.update((p.track_id, p) for p in batch)
        tid += n
    return out


class IndexContract:
    """Subclass and provide a ``backend`` fixture (a fresh, empty ``Backend`` per test)."""

    # --- empty reads --------------------------------------------------------------------------
    def test_empty_index(self, backend: Backend) -> None:
        q = np.array([0, 1, 2, 2**32 - 1], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter()
        peaks = backend.index.track_peaks(1)
        assert peaks.shape == (0, 2) and peaks.dtype == np.int32
        assert backend.index.postings() == 0

    def test_empty_query(self, backend: Backend) -> None:
        fill(backend, np.random.default_rng(0), [2])
        q = np.zeros(0, dtype=np.uint32)
        hits = backend.index.lookup(q, BIG_CAP)
        assert got(hits, q) == Counter() and len(hits.hash_pos) == 0

    def test_absent_and_extreme_hashes(self, backend: Backend) -> None:
        backend.add([track(5, [0, 2**32 - 1, 7], [3, 4, 5])])
        q = np.array([0, 1, 7, 2**32 - 2, 2**32 - 1], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter([(0, 5, 3), (7, 5, 5), (2**32 - 1, 5, 4)])
        q = np.array([1, 2, 2**32 - 2], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter()

    # --- lookup returns exactly what was added ------------------------------------------------
    def test_lookup_matches_brute_force_across_batches(self, backend: Backend) -> None:
        rng = np.random.default_rng(1)
        tracks = fill(backend, rng, [3, 1, 4, 2])
        assert backend.index.postings() == sum(len(t.hashes) for t in tracks.values())
        for _ in range(3):
            q = query_hashes(rng)
            assert got(backend.index.lookup(q, BIG_CAP), q) == expected(tracks, q)

    def test_every_added_hash_is_found(self, backend: Backend) -> None:
        rng = np.random.default_rng(2)
        tracks = fill(backend, rng, [2, 3])
        q = np.unique(np.concatenate([t.hashes for t in tracks.values()]))
        want = expected(tracks, q)
        assert got(backend.index.lookup(q, BIG_CAP), q) == want
        assert sum(want.values()) == backend.index.postings()

    def test_hash_pos_indexes_an_unsorted_query(self, backend: Backend) -> None:
        backend.add([track(1, [10, 20, 30], [1, 2, 3])])
        q = np.array([30, 5, 10], dtype=np.uint32)
        hits = backend.index.lookup(q, BIG_CAP)
        assert sorted(zip(hits.hash_pos.tolist(), hits.times.tolist(), strict=True)) == [(0, 3), (2, 1)]

    def test_duplicate_hashes(self, backend: Backend) -> None:
        # One hash several times in a track (at different and at equal times) and in several tracks.
        a = track(1, [4, 4, 4, 9], [0, 7, 7, 1])
        b = track(2, [4, 9, 9], [3, 1, 1])
        backend.add([a])
        backend.add([b])
        q = np.array([4, 9], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter(
            {(4, 1, 0): 1, (4, 1, 7): 2, (4, 2, 3): 1, (9, 1, 1): 1, (9, 2, 1): 2}
        )
        assert backend.index.postings() == 7

    def test_same_batch_and_separate_batches_agree(self, backend: Backend) -> None:
        rng = np.random.default_rng(3)
        batch = [random_track(rng, i) for i in (1, 2, 3)]
        backend.add(batch[:1])
        backend.add(batch[1:])
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected({p.track_id: p for p in batch}, q)

    def test_large_ids(self, backend: Backend) -> None:
        ids = [0, 2**31, 2**32 + 1, 2**53 + 1, 2**63 - 1]
        tracks = {
            tid: track(tid, [100 + i, 1], [i, i], np.array([[i, i]], dtype=np.int32)) for i, tid in enumerate(ids)
        }
        backend.add(list(tracks.values())[:2])
        backend.add(list(tracks.values())[2:])
        q = np.array([1, 100, 101, 102, 103, 104], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(tracks, q)
        for i, tid in enumerate(ids):
            np.testing.assert_array_equal(backend.index.track_peaks(tid), [[i, i]])

    def test_large_times(self, backend: Backend) -> None:
        backend.add([track(1, [1, 2], [0, 2**31 - 1])])
        backend.add([track(2, [1, 3], [2**21, 2**21 - 1]), track(3, [1], [5])])
        q = np.array([1, 2, 3], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter(
            [(1, 1, 0), (2, 1, 2**31 - 1), (1, 2, 2**21), (3, 2, 2**21 - 1), (1, 3, 5)]
        )

    # --- the per-hash cap ---------------------------------------------------------------------
    def test_cap_counts_postings_across_batches(self, backend: Backend) -> None:
        a = track(1, [1, 1, 1, 2, 2, 2, 3])
        b = track(2, [1, 1, 2, 2, 2, 4])
        backend.add([a])
        backend.add([b])
        q = np.array([1, 2, 3, 4], dtype=np.uint32)
        # Hash 1 has 5 postings, hash 2 has 6, hashes 3 and 4 one each.
        tracks = {1: a, 2: b}
        for cap, hashes in ((6, {1, 2, 3, 4}), (5, {1, 3, 4}), (4, {3, 4}), (1, {3, 4}), (0, set())):
            result = got(backend.index.lookup(q, cap), q)
            assert result == expected(tracks, q, cap=cap)
            assert {h for h, _, _ in result} == hashes

    def test_cap_with_random_postings(self, backend: Backend) -> None:
        rng = np.random.default_rng(4)
        tracks = fill(backend, rng, [2, 3])
        q = query_hashes(rng, n=2000)
        for cap in (1, 2, 3, 5):
            assert got(backend.index.lookup(q, cap), q) == expected(tracks, q, cap=cap)

    # --- the query's budget --------------------------------------------------------------------
    def test_budget_drops_the_commonest_hashes_first(self, backend: Backend) -> None:
        a = track(1, [1, 1, 1, 2, 2, 2, 3, 5])
        b = track(2, [1, 1, 2, 2, 2, 4, 5])
        backend.add([a])
        backend.add([b])
        q = np.array([1, 2, 3, 4, 5, 9], dtype=np.uint32)
        # Postings: hash 1 five, hash 2 six, hash 5 two, hashes 3 and 4 one each, hash 9 none.
        tracks = {1: a, 2: b}
        for budget, hashes in ((100, {1, 2, 3, 4, 5}), (15, {1, 2, 3, 4, 5}), (14, {1, 3, 4, 5}), (9, {1, 3, 4, 5}),
                               (8, {3, 4, 5}), (4, {3, 4, 5}), (3, {3, 4}), (1, set()), (0, set())):  # fmt: skip
            hits = backend.index.lookup(q, BIG_CAP, budget)
            result = got(hits, q)
            assert result == expected(tracks, q, budget=budget)
            assert {h for h, _, _ in result} == hashes, budget
            # The hashes with postings the budget left out are counted (hash 9 has none).
            assert hits.budget_dropped == 5 - len(hashes), budget
        # The cap applies first: what it drops costs nothing, and is not the budget's doing.
        capped = backend.index.lookup(q, 5, 9)
        assert {h for h, _, _ in got(capped, q)} == {1, 3, 4, 5}
        assert capped.budget_dropped == 0
        assert backend.index.lookup(q, 5).budget_dropped == 0

    def test_budget_with_random_postings(self, backend: Backend) -> None:
        rng = np.random.default_rng(8)
        tracks = fill(backend, rng, [2, 3])
        q = query_hashes(rng, n=2000)
        full = len(backend.index.lookup(q, BIG_CAP).hash_pos)
        for cap, budget in ((BIG_CAP, full), (BIG_CAP, full // 2), (3, full // 3), (BIG_CAP, 7)):
            hits = backend.index.lookup(q, cap, budget)
            assert got(hits, q) == expected(tracks, q, cap=cap, budget=budget)
            assert len(hits.hash_pos) <= budget

    # --- removal ------------------------------------------------------------------------------
    def test_removal_hides_a_track(self, backend: Backend) -> None:
        rng = np.random.default_rng(5)
        tracks = fill(backend, rng, [3, 3])
        victims = {2, 5}
        backend.remove(victims)
        q = query_hashes(rng)
        result = got(backend.index.lookup(q, BIG_CAP), q)
        assert result == expected(tracks, q, removed=victims)
        assert not {tid for _, tid, _ in result} & victims
        for tid in set(tracks) - victims:
            np.testing.assert_array_equal(backend.index.track_peaks(tid), tracks[tid].peaks)

    def test_removal_of_unknown_ids_changes_nothing(self, backend: Backend) -> None:
        rng = np.random.default_rng(6)
        tracks = fill(backend, rng, [2])
        backend.remove([10_000, 2**63 - 1])
        backend.remove([])
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(tracks, q)

    def test_removing_every_track(self, backend: Backend) -> None:
        rng = np.random.default_rng(7)
        tracks = fill(backend, rng, [2, 1])
        backend.remove(tracks)
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter()

    def test_adds_after_a_removal(self, backend: Backend) -> None:
        rng = np.random.default_rng(8)
        tracks = fill(backend, rng, [2])
        backend.remove([1])
        tracks.update(fill(backend, rng, [2], first_id=3))
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(tracks, q, removed=[1])
        np.testing.assert_array_equal(backend.index.track_peaks(4), tracks[4].peaks)

    def test_removed_track_has_no_peaks(self, backend: Backend) -> None:
        backend.add([track(1, [1], [0], np.array([[3, 4]], dtype=np.int32)), track(2, [2])])
        backend.remove([1])
        assert backend.index.track_peaks(1).shape == (0, 2)

    # --- peaks --------------------------------------------------------------------------------
    def test_peaks_round_trip(self, backend: Backend) -> None:
        rng = np.random.default_rng(9)
        tracks = fill(backend, rng, [2, 1])
        frames = np.array([0, 1, 2**21, 2**22 - 1], dtype=np.int32)
        edge = track(100, [9], [0], np.stack([frames, np.array([0, 1023, 512, 1])], axis=1).astype(np.int32))
        no_peaks = track(101, [9, 10], [0, 1])
        backend.add([edge, no_peaks])
        tracks.update({100: edge, 101: no_peaks})
        for tid, t in tracks.items():
            peaks = backend.index.track_peaks(tid)
            assert peaks.dtype == np.int32 and peaks.shape == (len(t.peaks), 2)
            np.testing.assert_array_equal(peaks, t.peaks)
        assert backend.index.track_peaks(102).shape == (0, 2)

    def test_track_without_hashes_keeps_its_peaks(self, backend: Backend) -> None:
        peaks = np.array([[1, 2], [5, 6]], dtype=np.int32)
        backend.add([track(1, [], [], peaks), track(2, [3], [4])])
        np.testing.assert_array_equal(backend.index.track_peaks(1), peaks)
        q = np.array([3], dtype=np.uint32)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter([(3, 2, 4)])

    def test_peaks_are_not_aliased_to_caller_arrays(self, backend: Backend) -> None:
        peaks = np.array([[1, 2]], dtype=np.int32)
        backend.add([track(1, [1], [0], peaks)])
        peaks[0, 0] = 99
        np.testing.assert_array_equal(backend.index.track_peaks(1), [[1, 2]])

    # --- the writer port ----------------------------------------------------------------------
    def test_add_returns_what_was_written(self, backend: Backend) -> None:
        rng = np.random.default_rng(20)
        batch = [random_track(rng, tid) for tid in (4, 2, 9)]
        written = backend.writer.add(batch)
        assert written.track_ids == (4, 2, 9)
        assert written.postings == sum(len(p.hashes) for p in batch) == backend.index.postings()
        assert sum(part.tracks for part in written.parts) == 3
        assert all(part.bytes > 0 for part in written.parts)
        stats = backend.index.stats()
        assert stats.postings == written.postings and stats.bytes > 0

    def test_a_written_batch_is_invisible_until_published_and_committed(self, backend: Backend) -> None:
        rng = np.random.default_rng(21)
        batch = [random_track(rng, tid) for tid in (1, 2)]
        q = np.unique(np.concatenate([p.hashes for p in batch]))
        written = backend.writer.write(batch)
        backend.index.refresh(force=True)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter()
        assert backend.index.track_peaks(1).shape == (0, 2) and backend.index.postings() == 0
        with backend.catalog.transaction():
            backend.writer.publish(written)
        backend.index.refresh(force=True)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected({p.track_id: p for p in batch}, q)
        np.testing.assert_array_equal(backend.index.track_peaks(2), batch[1].peaks)

    def test_an_aborted_commit_leaves_nothing(self, backend: Backend) -> None:
        rng = np.random.default_rng(22)
        kept = fill(backend, rng, [2])
        batch = [random_track(rng, tid) for tid in (10, 11)]
        written = backend.writer.write(batch)
        with pytest.raises(RuntimeError, match="the catalog failed"):
            try:
                with backend.catalog.transaction():
                    backend.writer.publish(written)
                    backend.writer.remove([1])
                    raise RuntimeError("the catalog failed")
            except BaseException:
                backend.writer.abort(written)
                raise
        backend.index.refresh(force=True)
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(kept, q)
        assert backend.index.postings() == sum(len(t.hashes) for t in kept.values())
        for tid in (10, 11):
            assert backend.index.track_peaks(tid).shape == (0, 2)
        np.testing.assert_array_equal(backend.index.track_peaks(1), kept[1].peaks)
        # The aborted ids are free again; later writes proceed normally.
        backend.add(batch)
        kept.update((p.track_id, p) for p in batch)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(kept, q)

    def test_a_batch_that_cannot_be_stored_adds_nothing(self, backend: Backend) -> None:
        rng = np.random.default_rng(23)
        kept = fill(backend, rng, [1])
        good = random_track(rng, 5)
        bad = TrackPostings(6, np.array([1, 2, 3], dtype=np.uint32), np.array([0, 1], dtype=np.int32), good.peaks)
        with pytest.raises(ValueError):
            backend.add([good, bad])
        with pytest.raises(ValueError):
            backend.add([good, random_track(rng, 5)])  # one id twice in a batch
        backend.index.refresh(force=True)
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(kept, q)
        assert backend.index.track_peaks(5).shape == (0, 2)
        assert backend.writer.cleanup() >= 0
        backend.add([good])
        np.testing.assert_array_equal(backend.index.track_peaks(5), good.peaks)

    def test_removal_waits_for_the_commit(self, backend: Backend) -> None:
        rng = np.random.default_rng(24)
        tracks = fill(backend, rng, [3])
        with pytest.raises(RuntimeError):
            try:
                with backend.catalog.transaction():
                    backend.writer.remove([2])
                    raise RuntimeError("rolled back")
            except BaseException:
                backend.writer.abort(None)
                raise
        backend.index.refresh(force=True)
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(tracks, q)
        np.testing.assert_array_equal(backend.index.track_peaks(2), tracks[2].peaks)

    def test_compact_keeps_live_tracks_and_drops_removed(self, backend: Backend) -> None:
        rng = np.random.default_rng(25)
        tracks = fill(backend, rng, [2, 3, 1, 2])
        victims = {1, 4, 8}
        backend.remove(victims)
        live = {tid: t for tid, t in tracks.items() if tid not in victims}
        backend.writer.compact(1)
        q = query_hashes(rng, n=2000)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(live, q)
        # After compaction every backend counts exactly the live postings, at every cap.
        assert backend.index.postings() == sum(len(t.hashes) for t in live.values())
        assert backend.index.stats().postings == backend.index.postings()
        for cap in (1, 3):
            assert got(backend.index.lookup(q, cap), q) == expected(live, q, cap=cap)
        assert backend.index.stats().segments <= 1
        for tid, t in live.items():
            np.testing.assert_array_equal(backend.index.track_peaks(tid), t.peaks)
        for tid in victims:
            assert backend.index.track_peaks(tid).shape == (0, 2)
        assert backend.writer.compact(1) == 0  # nothing left to do
        more = fill(backend, rng, [2], first_id=20)
        live.update(more)
        assert got(backend.index.lookup(q, BIG_CAP), q) == expected(live, q)

    def test_compact_of_only_removed_tracks_empties_the_index(self, backend: Backend) -> None:
        rng = np.random.default_rng(26)
        tracks = fill(backend, rng, [2, 1])
        backend.remove(tracks)
        backend.writer.compact(1)
        q = query_hashes(rng)
        assert got(backend.index.lookup(q, BIG_CAP), q) == Counter()
        assert backend.index.postings() == 0 and backend.index.stats().segments == 0

    def test_compact_of_an_empty_index(self, backend: Backend) -> None:
        assert backend.writer.compact(1) == 0
        assert backend.index.stats().postings == 0
