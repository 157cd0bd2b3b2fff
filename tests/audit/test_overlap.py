"""The pure stages of the audit on synthetic hits: aligned spans, the repeat rule, pair kinds, groups."""

from __future__ import annotations

import numpy as np

from soundmark.audit.groups import Segment, describe, group_pairs, snap
from soundmark.audit.overlap import AlignedHits, AlignSettings, find_alignments, spans

S = AlignSettings(min_overlap=300)  # ≈10 s of 32 ms frames


def _hits(*runs: tuple[int, int, int, int], noise: int = 0, seed: int = 0) -> AlignedHits:
    """Runs (other, offset, start, end) of aligned hashes every 2 frames, plus ``noise`` chance hits."""
    rng = np.random.default_rng(seed)
    others, offsets, times = [], [], []
    for other, offset, start, end in runs:
        t = np.arange(start, end, 2)
        others.append(np.full(len(t), other))
        offsets.append(np.full(len(t), offset) + rng.choice([-1, 0, 0, 1], len(t)))  # peak jitter
        times.append(t)
    others.append(rng.integers(1, 5, noise))
    offsets.append(rng.integers(-5000, 5000, noise))
    times.append(rng.integers(0, 6000, noise))
    return AlignedHits(*(np.concatenate(x).astype(np.int64) for x in (others, offsets, times)))


def test_one_aligned_run_among_chance_hits() -> None:
    found = find_alignments(_hits((2, 700, 1000, 2500), noise=20000), S)
    assert [(a.other, a.offset) for a in found] == [(2, 700)]
    assert abs(found[0].start - 1000) <= 2 and abs(found[0].end - 2500) <= 2
    assert found[0].votes >= 700


def test_chance_hits_alone_align_nothing() -> None:
    assert find_alignments(_hits(noise=50000, seed=3), S) == []


def test_too_short_or_too_sparse_is_not_a_span() -> None:
    assert find_alignments(_hits((2, 0, 0, 200)), S) == []  # 6 s < 10 s
    sparse = np.arange(0, 3000, 40)  # one aligned hash every 1.3 s
    assert spans(sparse, S) == []


def test_a_gap_longer_than_allowed_splits_the_span() -> None:
    t = np.concatenate([np.arange(0, 600, 2), np.arange(600 + 10 * 31, 1500, 2)])
    got = spans(t, S)
    assert [(s, e) for s, e, _ in got] == [(0, 599), (910, 1499)]


def test_a_repeat_inside_the_song_adds_nothing_but_a_second_play_does() -> None:
    # Track 2 holds A twice (offsets 1000 and 5000); A's chorus 0–600 also lines up 400 later.
    hits = _hits((2, 1000, 0, 2000), (2, 5000, 0, 2000), (2, 1400, 0, 600))
    found = find_alignments(hits, S)
    assert sorted(a.offset for a in found) == [1000, 5000]


def test_kinds_and_the_container_first() -> None:
    same = describe(1, 2, [Segment(0, 180, 0, 179.5)], 180, 179.5, 100, 0.9)
    assert same.kind == "same" and (same.a, same.b) == (1, 2)
    inside = describe(1, 2, [Segment(0, 60, 30, 90)], 60, 200, 100, 0.9)  # 1 lies inside 2
    assert inside.kind == "contains" and (inside.a, inside.b) == (2, 1)
    assert inside.segments == (Segment(30, 90, 0, 60),) and inside.offset_seconds == -30
    assert (inside.fraction_a, inside.fraction_b) == (0.3, 1.0)
    part = describe(1, 2, [Segment(100, 150, 0, 50)], 150, 200, 100, 0.9)
    assert part.kind == "overlap"


def test_snap_reaches_the_ends_within_a_second() -> None:
    assert snap(0.6, 179.2, 180.0) == (0.0, 180.0)
    assert snap(3.0, 170.0, 180.0) == (3.0, 170.0)
    assert snap(-2.0, 200.0, 180.0) == (0.0, 180.0)


def test_groups_join_chains_and_keep_the_listed_order() -> None:
    p = [describe(a, b, [Segment(0, 60, 0, 60)], 60, 60, 10, 0.9) for a, b in [(5, 7), (3, 5), (8, 9)]]
    groups = group_pairs(p, [9, 8, 7, 5, 3])
    assert [g.members for g in groups] == [(9, 8), (7, 5, 3)]
    assert [len(g.pairs) for g in groups] == [1, 2]
