"""The tiered merge policy (index/policy.py): logarithmic segment count and rewrites, removals
that rewrite only the segments they hollowed out."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from contract import BIG_CAP, expected, got
from segment_support import open_index, remove, synthetic_track

from soundmark.index.policy import (
    DEAD_REWRITE_FRACTION,
    TIER_BASE_POSTINGS,
    TIER_FACTOR,
    SegmentSize,
    max_segments,
    next_merge,
    tier,
)


def test_tiers() -> None:
    assert tier(0) == tier(TIER_BASE_POSTINGS - 1) == 0
    assert tier(TIER_BASE_POSTINGS) == 1
    assert tier(TIER_BASE_POSTINGS * TIER_FACTOR - 1) == 1
    assert tier(TIER_BASE_POSTINGS * TIER_FACTOR) == 2


def test_simulated_adds_rewrite_each_posting_a_logarithmic_number_of_times() -> None:
    """10,000 adds of one tier-1 floor each, merged as the policy says (sizes only)."""
    segs: list[SegmentSize] = []
    written = 0
    add = TIER_BASE_POSTINGS
    for i in range(10_000):
        segs.append(SegmentSize(f"a{i}", add))
        written += add
        while group := next_merge(segs):
            merged = sum(s.postings for s in segs if s.name in group)
            segs = [s for s in segs if s.name not in group] + [SegmentSize(f"m{i}-{len(segs)}", merged)]
            written += merged
        total = sum(s.postings for s in segs)
        assert len(segs) <= max_segments(total)
    total = 10_000 * add
    assert written / total <= 1 + math.log(10_000, TIER_FACTOR)  # each posting: once per tier
    assert len(segs) <= (TIER_FACTOR - 1) * (tier(total) + 1)


def test_two_hundred_small_adds_keep_the_segment_count_logarithmic(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    catalog, index = open_index(tmp_path / "db")
    tracks = {}
    counts = []
    per_add = TIER_BASE_POSTINGS // 6  # six adds fill a tier-1 floor
    for i in range(200):
        batch = [synthetic_track(rng, 1 + i, per_add)]
        index.add(batch)
        tracks[1 + i] = batch[0]
        index.merge_by_policy()
        counts.append(len(index.names))
        assert len(index.names) <= max_segments(index.postings())
    total = index.postings()
    assert total == 200 * per_add
    assert max(counts) <= (TIER_FACTOR - 1) * (tier(total) + 1) < 200 / 4
    q = np.unique(rng.integers(0, 1 << 22, 5000)).astype(np.uint32)
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q)
    catalog.close()


def test_removals_rewrite_only_the_hollowed_segments(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    catalog, index = open_index(tmp_path / "db")
    tracks = {}
    for s in range(4):
        batch = [synthetic_track(rng, 10 * s + i, 200) for i in range(10)]
        index.add(batch)
        tracks.update((p.track_id, p) for p in batch)
    first, second, third, fourth = index.names
    # One track of the second segment (10 %): below the threshold, nothing rewritten.
    remove(catalog, index, [10])
    assert index.merge_by_policy() == 0 and index.names == [first, second, third, fourth]
    # Four tracks of the third (40 % ≥ DEAD_REWRITE_FRACTION): only it is rewritten.
    assert DEAD_REWRITE_FRACTION <= 0.4
    remove(catalog, index, [20, 21, 22, 23])
    assert index.merge_by_policy() == 1
    assert index.names[:3] == [first, second, fourth] and len(index.names) == 4
    tombs = [r[0] for r in catalog.conn.execute("SELECT track_id FROM tombstones")]
    assert tombs == [10]  # applied tombstones cleared, the other one kept until its segment goes
    gone = [10, 20, 21, 22, 23]
    q = np.unique(np.concatenate([p.hashes for p in tracks.values()]))
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q, removed=gone)
    assert index.postings() == 40 * 200 - 4 * 200
    catalog.close()


def test_a_backlog_of_unmerged_adds_is_worked_off_in_one_call(tmp_path: Path) -> None:
    """Adds committed without merging (a bulk load, a writer that died before its merges) leave
    more segments than 64 merges clear: one merge_by_policy call brings the index back in shape."""
    rng = np.random.default_rng(3)
    catalog, index = open_index(tmp_path / "db")
    tracks = {}
    adds = 8 * 64 + 40  # more tier-0 segments than 64 merges of 8 can take
    for i in range(adds):
        batch = [synthetic_track(rng, 1 + i, 20)]
        index.add(batch)
        tracks[1 + i] = batch[0]
    assert len(index.names) == adds
    assert index.merge_by_policy() >= adds
    assert len(index.names) <= max_segments(index.postings())
    q = np.unique(np.concatenate([p.hashes for p in tracks.values()]))
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q)
    catalog.close()
