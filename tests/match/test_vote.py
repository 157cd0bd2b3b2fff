"""Offset voting on synthetic hash hits: the aligned track and offset must win."""

from __future__ import annotations

import numpy as np

from soundmark.index.base import Hits
from soundmark.match.vote import Pairs, QueryHashes, best_candidates, join

I64 = np.int64


def _pairs(track_ids: list[int], offsets: list[int], rate_idx: list[int] | None = None) -> Pairs:
    n = len(track_ids)
    return Pairs(
        track_ids=np.array(track_ids, dtype=I64),
        rate_idx=np.array(rate_idx if rate_idx is not None else [0] * n, dtype=I64),
        offsets=np.array(offsets, dtype=I64),
        query_times=np.zeros(n, dtype=I64),
    )


def _query(hashes: list[int], times: list[int], rates: list[int] | None = None) -> QueryHashes:
    return QueryHashes(
        hashes=np.array(hashes, dtype=np.uint32),
        times=np.array(times, dtype=I64),
        rate_idx=np.array(rates if rates is not None else [0] * len(hashes), dtype=I64),
    )


# join ------------------------------------------------------------------------------------------


def test_join_pairs_every_hit_with_every_query_entry_of_its_hash() -> None:
    # Hash 7 occurs twice in the query (t=0 and t=5), hash 9 once (t=2).
    query = _query([7, 9, 7], [0, 2, 5])
    unique, inverse = np.unique(query.hashes, return_inverse=True)
    assert list(unique) == [7, 9]
    # One posting of hash 7 (track 1, ref time 100), one of hash 9 (track 2, ref time 50).
    hits = Hits(np.array([0, 1], dtype=I64), np.array([1, 2], dtype=I64), np.array([100, 50], dtype=I64))
    pairs = join(query, unique, inverse, hits)
    got = sorted(zip(pairs.track_ids.tolist(), pairs.offsets.tolist(), pairs.query_times.tolist(), strict=True))
    assert got == [(1, 95, 5), (1, 100, 0), (2, 48, 2)]


def test_join_carries_the_rate_of_the_query_entry() -> None:
    query = _query([3, 3], [10, 20], rates=[0, 4])
    unique, inverse = np.unique(query.hashes, return_inverse=True)
    hits = Hits(np.array([0], dtype=I64), np.array([5], dtype=I64), np.array([30], dtype=I64))
    pairs = join(query, unique, inverse, hits)
    got = sorted(zip(pairs.rate_idx.tolist(), pairs.offsets.tolist(), strict=True))
    assert got == [(0, 20), (4, 10)]
    assert set(pairs.track_ids.tolist()) == {5}


def test_join_of_no_hits_is_empty() -> None:
    query = _query([1, 2], [0, 1])
    unique, inverse = np.unique(query.hashes, return_inverse=True)
    pairs = join(query, unique, inverse, Hits.empty())
    for arr in (pairs.track_ids, pairs.rate_idx, pairs.offsets, pairs.query_times):
        assert arr.shape == (0,)
        assert arr.dtype == np.int64


def test_join_then_vote_finds_the_planted_alignment() -> None:
    rng = np.random.default_rng(1)
    n = 300
    q_hashes = rng.choice(1 << 20, size=n, replace=False).astype(np.uint32)
    q_times = np.sort(rng.integers(0, 300, size=n)).astype(I64)
    query = QueryHashes(q_hashes, q_times, np.zeros(n, dtype=I64))
    unique, inverse = np.unique(q_hashes, return_inverse=True)
    pos_of = {int(h): i for i, h in enumerate(unique)}
    # Track 3 holds the query's audio at reference frame 1234 (with ±1 frame jitter on a third of
    # the hits); tracks 1 and 2 share random hashes at random times.
    jitter = rng.integers(-1, 2, size=n // 3)
    true_times = q_times[: n // 3] + 1234 + jitter
    noise_n = 200
    noise_pos = rng.integers(0, len(unique), size=noise_n)
    hash_pos = np.concatenate([[pos_of[int(h)] for h in q_hashes[: n // 3]], noise_pos]).astype(I64)
    track_ids = np.concatenate([np.full(n // 3, 3), rng.integers(1, 3, size=noise_n)]).astype(I64)
    times = np.concatenate([true_times, rng.integers(0, 10_000, size=noise_n)]).astype(I64)
    pairs = join(query, unique, inverse, Hits(hash_pos, track_ids, times))
    cands = best_candidates(pairs, n_rates=1, tolerance=1, top=3)
    assert cands[0].track_id == 3
    assert cands[0].offset in (1233, 1234, 1235)
    assert cands[0].votes >= n // 3 - 2  # nearly every aligned hit within the ±1 frame window
    assert all(c.votes < cands[0].votes // 4 for c in cands[1:])


# best_candidates -------------------------------------------------------------------------------


def test_best_candidates_of_nothing_is_empty() -> None:
    assert best_candidates(_pairs([], []), n_rates=9, tolerance=1, top=5) == []


def test_the_aligned_offset_wins_over_scattered_pairs() -> None:
    # Track 1: 10 pairs at offset 500, 5 scattered; track 2: 8 scattered pairs.
    pairs = _pairs(
        [1] * 10 + [1] * 5 + [2] * 8,
        [500] * 10 + [10, 90, 170, 250, 330] + [40 * k for k in range(8)],
    )
    cands = best_candidates(pairs, n_rates=1, tolerance=1, top=5)
    assert [c.track_id for c in cands] == [1, 2]
    best = cands[0]
    assert (best.offset, best.votes, best.rate_idx) == (500, 10, 0)
    assert best.track_pairs == 15  # every pair of track 1 at this rate: the background
    assert best.runner_up == 1  # the best far-away offset holds one pair
    assert cands[1].votes == 1
    assert cands[1].track_pairs == 8


def test_votes_pool_within_the_tolerance() -> None:
    # Peaks jitter: offsets 99, 100, 101 are one alignment at tolerance 1 ...
    pairs = _pairs([1] * 6, [99, 100, 100, 101, 101, 300])
    (c,) = best_candidates(pairs, n_rates=1, tolerance=1, top=1)
    assert c.offset == 100
    assert c.votes == 5
    # ... but not at tolerance 0, where the doubled offsets stand alone.
    (c0,) = best_candidates(pairs, n_rates=1, tolerance=0, top=1)
    assert c0.votes == 2
    assert c0.offset in (100, 101)


def test_one_candidate_per_track_strongest_first_and_top_caps() -> None:
    pairs = _pairs([1] * 3 + [2] * 7 + [3] * 5 + [2] * 4, [10] * 3 + [20] * 7 + [30] * 5 + [900] * 4)
    cands = best_candidates(pairs, n_rates=1, tolerance=1, top=5)
    assert [(c.track_id, c.offset, c.votes) for c in cands] == [(2, 20, 7), (3, 30, 5), (1, 10, 3)]
    assert cands[0].runner_up == 4  # track 2's second alignment
    top2 = best_candidates(pairs, n_rates=1, tolerance=1, top=2)
    assert [c.track_id for c in top2] == [2, 3]


def test_rates_are_voted_separately_and_reported() -> None:
    # Track 4: 6 pairs at rate 2, offset 70; 3 at rate 0, offset 70. Rates never pool.
    pairs = _pairs([4] * 9, [70] * 9, rate_idx=[2] * 6 + [0] * 3)
    (c,) = best_candidates(pairs, n_rates=5, tolerance=1, top=3)
    assert (c.track_id, c.rate_idx, c.offset, c.votes) == (4, 2, 70, 6)
    assert c.track_pairs == 6  # the background counts this rate's pairs only


def test_negative_and_large_offsets_round_trip() -> None:
    pairs = _pairs([1] * 4 + [2] * 3, [-250] * 4 + [3_000_000] * 3)
    cands = best_candidates(pairs, n_rates=9, tolerance=1, top=2)
    assert [(c.track_id, c.offset, c.votes) for c in cands] == [(1, -250, 4), (2, 3_000_000, 3)]


def test_ties_go_to_the_lower_track_id_and_the_lower_offset() -> None:
    # Equal votes on two tracks: the lower id first (the first stored, as copies expect).
    pairs = _pairs([7] * 4 + [3] * 4, [50] * 4 + [80] * 4)
    cands = best_candidates(pairs, n_rates=1, tolerance=1, top=2)
    assert [c.track_id for c in cands] == [3, 7]
    assert cands[0].votes == cands[1].votes == 4
    # Equal votes at two offsets of one track: the lower offset is reported, the other is runner-up.
    (c,) = best_candidates(_pairs([5] * 6, [400] * 3 + [100] * 3), n_rates=1, tolerance=1, top=1)
    assert (c.offset, c.votes, c.runner_up) == (100, 3, 3)


def test_runner_up_ignores_the_neighbourhood_of_the_winner() -> None:
    # At tolerance 1, offsets within 2·1+1 = 3 frames are the same peak of the histogram.
    pairs = _pairs([1] * 9, [100] * 5 + [103] * 2 + [104] * 2)
    (c,) = best_candidates(pairs, n_rates=1, tolerance=1, top=1)
    assert (c.offset, c.votes) == (100, 5)
    # 103 is 3 frames away (the same peak); 104 is farther, and its ±1 window holds 103 and 104.
    assert c.runner_up == 4
