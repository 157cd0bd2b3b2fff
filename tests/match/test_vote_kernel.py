"""The compiled vote (``best_candidates`` and ``vote``, track by track in ``vote_kernel``) picks
exactly the candidates that sorting every pair picked (the vote as it was, kept here as the
reference), on generated catalogs of pairs."""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.index.base import Hits
from soundmark.match.vote import (
    MAX_RATES,
    Candidate,
    Pairs,
    QueryHashes,
    best_candidates,
    exact_candidates,
    join,
    searched_groups,
    vote,
)

I64 = np.int64
_OFFSET_BITS = 33
_OFFSET_BIAS = 1 << 32


def _sorted_vote(pairs: Pairs, n_rates: int, tolerance: int, top: int) -> list[Candidate]:
    """best_candidates as it was before pruning (every pair np.unique-sorted), verbatim."""
    if len(pairs.track_ids) == 0:
        return []
    group = pairs.track_ids * n_rates + pairs.rate_idx
    keys = (group << _OFFSET_BITS) | (pairs.offsets + _OFFSET_BIAS)
    ukeys, counts = np.unique(keys, return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    lo = np.searchsorted(ukeys, ukeys - tolerance, side="left")
    hi = np.searchsorted(ukeys, ukeys + tolerance, side="right")
    window = cum[hi] - cum[lo]
    ugroup = ukeys >> _OFFSET_BITS
    gstarts = np.flatnonzero(np.concatenate([[True], ugroup[1:] != ugroup[:-1]]))
    gtotals = np.add.reduceat(counts, gstarts)
    group_total = np.repeat(gtotals, np.diff(np.append(gstarts, len(ukeys))))
    order = np.argsort(-window, kind="stable")
    tracks = ugroup[order] // n_rates
    _, first = np.unique(tracks, return_index=True)
    chosen = order[np.sort(first)][:top]
    group_end = np.append(gstarts[1:], len(ukeys))
    group_of = np.repeat(np.arange(len(gstarts)), np.diff(np.append(gstarts, len(ukeys))))
    offsets = (ukeys & ((1 << _OFFSET_BITS) - 1)).astype(np.int64) - _OFFSET_BIAS
    out = []
    for i in chosen:
        g = group_of[i]
        a, b = gstarts[g], group_end[g]
        far = np.abs(offsets[a:b] - offsets[i]) > 2 * tolerance + 1
        runner_up = int(window[a:b][far].max()) if far.any() else 0
        out.append(
            Candidate(
                track_id=int(ugroup[i] // n_rates),
                rate_idx=int(ugroup[i] % n_rates),
                offset=int((ukeys[i] & ((1 << _OFFSET_BITS) - 1)) - _OFFSET_BIAS),
                votes=int(window[i]),
                track_pairs=int(group_total[i]),
                runner_up=runner_up,
            )
        )
    return out


def _catalog_pairs(seed: int, tracks: int, n: int, planted: int, n_rates: int) -> Pairs:
    """``n`` chance pairs over ``tracks`` tracks (a few tracks, like common ones, get many more),
    plus ``planted`` alignments of 3..60 pairs each with ±1 frame of jitter, some at two rates."""
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.5, size=tracks) + 1
    track_ids = [rng.choice(tracks, size=n, p=weights / weights.sum())]
    offsets = [rng.integers(-300, 20_000, size=n)]
    rates = [rng.integers(0, n_rates, size=n)]
    for _ in range(planted):
        m = int(rng.integers(3, 61))
        t, off, r = int(rng.integers(tracks)), int(rng.integers(0, 20_000)), int(rng.integers(n_rates))
        track_ids.append(np.full(m, t))
        offsets.append(off + rng.integers(-1, 2, size=m))
        rates.append(np.where(rng.random(m) < 0.8, r, (r + 1) % n_rates))
    return Pairs(
        track_ids=np.concatenate(track_ids).astype(I64),
        rate_idx=np.concatenate(rates).astype(I64),
        offsets=np.concatenate(offsets).astype(I64),
        query_times=np.zeros(sum(len(x) for x in track_ids), dtype=I64),
    )


CASES = [
    # seed, tracks, chance pairs, planted alignments, rates, tolerance, top
    (1, 78, 6_000, 1, 9, 2, 6),
    (2, 1_000, 50_000, 3, 9, 2, 6),
    (3, 10_000, 300_000, 8, 9, 2, 6),
    (4, 300, 20_000, 0, 9, 2, 6),  # nothing planted: chance alone
    (5, 2_000, 80_000, 40, 5, 1, 6),
    (6, 50, 40_000, 2, 9, 2, 6),  # few tracks, dense histograms
    (7, 5_000, 120_000, 5, 1, 1, 1),  # dedupe's call: one rate, tolerance 1, the best only
    (8, 500, 30_000, 20, 9, 0, 3),
    (9, 20_000, 200_000, 0, 9, 2, 12),
]


@pytest.mark.parametrize(("seed", "tracks", "n", "planted", "n_rates", "tolerance", "top"), CASES)
def test_the_kernel_vote_chooses_what_the_sorted_vote_chose(
    seed: int, tracks: int, n: int, planted: int, n_rates: int, tolerance: int, top: int
) -> None:
    pairs = _catalog_pairs(seed, tracks, n, planted, n_rates)
    want = _sorted_vote(pairs, n_rates, tolerance, top)
    assert len(want) == top
    assert best_candidates(pairs, n_rates, tolerance, top) == want
    assert exact_candidates(pairs, n_rates, tolerance, top) == want


@pytest.mark.parametrize(("seed", "tracks", "n", "planted", "n_rates", "tolerance", "top"), CASES)
@pytest.mark.parametrize("floor", [2, 4, 8])
def test_with_a_floor_it_is_the_sorted_vote_less_what_falls_below_it(
    seed: int, tracks: int, n: int, planted: int, n_rates: int, tolerance: int, top: int, floor: int
) -> None:
    pairs = _catalog_pairs(seed, tracks, n, planted, n_rates)
    want = [c for c in _sorted_vote(pairs, n_rates, tolerance, top) if c.votes >= floor]
    assert best_candidates(pairs, n_rates, tolerance, top, floor=floor) == want


def test_a_small_input_is_the_sorted_vote_too() -> None:
    pairs = _catalog_pairs(10, 40, 200, 2, 9)
    assert best_candidates(pairs, 9, 2, 6) == _sorted_vote(pairs, 9, 2, 6)


def test_ties_at_the_cut_resolve_as_the_sorted_vote_did() -> None:
    # 40 tracks each with exactly one 5-pair alignment, in chance pairs of one each: the top 6
    # of 40 equal windows are the 6 lowest track ids, the kernel's bound must not let it pick others.
    rng = np.random.default_rng(12)
    ids = np.concatenate([np.repeat(np.arange(100, 140), 5), rng.integers(0, 4000, size=6000)])
    offs = np.concatenate([np.repeat(rng.integers(0, 9000, size=40), 5), rng.integers(0, 2**20, size=6000)])
    pairs = Pairs(ids.astype(I64), np.zeros(len(ids), dtype=I64), offs.astype(I64), np.zeros(len(ids), dtype=I64))
    want = _sorted_vote(pairs, 1, 2, 6)
    assert [c.track_id for c in want] == list(range(100, 106))
    assert best_candidates(pairs, 1, 2, 6) == want


def _query_and_hits(
    seed: int, tracks: int, n_hashes: int, n_rates: int
) -> tuple[QueryHashes, np.ndarray, np.ndarray, Hits]:
    """A query over ``n_rates`` warps (some hashes repeated within and across warps) and hits on
    its unique hashes: chance postings everywhere, one track aligned at one offset."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 3000, size=n_hashes).astype(np.uint32)
    times = rng.integers(0, 800, size=n_hashes).astype(I64)
    rates = rng.integers(0, n_rates, size=n_hashes).astype(I64)
    query = QueryHashes(hashes, times, rates)
    unique, inverse = np.unique(hashes, return_inverse=True)
    n_hits = 20 * len(unique)
    pos = rng.integers(0, len(unique), size=n_hits)
    tids = rng.integers(0, tracks, size=n_hits)
    ref_t = rng.integers(0, 30_000, size=n_hits)
    true = rng.choice(n_hashes, size=n_hashes // 10, replace=False)  # track 7 at offset 5000
    pos = np.concatenate([pos, inverse[true]])
    tids = np.concatenate([tids, np.full(len(true), 7)])
    ref_t = np.concatenate([ref_t, times[true] + 5000 + rng.integers(-1, 2, size=len(true))])
    order = np.argsort(pos, kind="stable")
    return query, unique, inverse, Hits(pos[order].astype(I64), tids[order].astype(I64), ref_t[order].astype(I64))


@pytest.mark.parametrize(("seed", "tracks", "n_rates", "floor"), [(1, 200, 5, 4), (2, 5000, 9, 0), (3, 50, 1, 2)])
def test_the_fused_vote_is_the_vote_of_the_joined_pairs(seed: int, tracks: int, n_rates: int, floor: int) -> None:
    query, unique, inverse, hits = _query_and_hits(seed, tracks, 4000, n_rates)
    pairs = join(query, unique, inverse, hits)
    want = [c for c in _sorted_vote(pairs, n_rates, 2, 6) if c.votes >= floor]
    got, groups = vote(query, unique, inverse, hits, n_rates, 2, 6, floor=floor)
    assert got == want
    assert want[0].track_id == 7 and abs(want[0].offset - 5000) <= 1
    assert groups == searched_groups(pairs, n_rates)


def test_sparse_track_ids_are_voted_on_alike() -> None:
    # Ids far above the pairs' count are renumbered for the kernel's buckets, then mapped back.
    pairs = _catalog_pairs(21, 300, 20_000, 4, 9)
    sparse = Pairs(pairs.track_ids * 1_000_003 + 17, pairs.rate_idx, pairs.offsets, pairs.query_times)
    want = [replace_id(c, c.track_id * 1_000_003 + 17) for c in _sorted_vote(pairs, 9, 2, 6)]
    assert best_candidates(sparse, 9, 2, 6) == want


def replace_id(c: Candidate, track_id: int) -> Candidate:
    return Candidate(track_id, c.rate_idx, c.offset, c.votes, c.track_pairs, c.runner_up)


def test_more_warps_than_the_kernel_counts_is_refused() -> None:
    pairs = _catalog_pairs(22, 30, 500, 1, 1)
    with pytest.raises(ValueError, match="warps"):
        best_candidates(pairs, MAX_RATES + 1, 2, 6)
