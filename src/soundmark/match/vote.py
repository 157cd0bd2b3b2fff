"""Offset-histogram voting.

Every hit pairs a query hash (at query time q, under a playback rate) with a reference posting
(track, reference time r). The audio of a true match lines up: r - q is the same for most of its
hits. Votes are counted per (track, rate, offset) with a tolerance of ±``tolerance`` frames for
the jitter of peak positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundmark.index.base import Hits

_OFFSET_BITS = 33
_OFFSET_BIAS = 1 << 32


@dataclass(frozen=True)
class QueryHashes:
    """All query hashes over the speed grid, flattened."""

    hashes: np.ndarray  # uint32
    times: np.ndarray  # int64 frames (already in reference time)
    rate_idx: np.ndarray  # int64 index into the speed grid


@dataclass(frozen=True)
class Pairs:
    """Joined (query hash, reference posting) pairs."""

    track_ids: np.ndarray  # int64
    rate_idx: np.ndarray  # int64
    offsets: np.ndarray  # int64 frames: reference time of the query's start
    query_times: np.ndarray  # int64


@dataclass(frozen=True)
class Candidate:
    track_id: int
    rate_idx: int
    offset: int  # frames
    votes: int
    track_pairs: int  # all pairs of this track at this rate (background estimate)
    runner_up: int = 0  # best vote count of the same (track, rate) away from this offset


def join(query: QueryHashes, unique: np.ndarray, inverse: np.ndarray, hits: Hits) -> Pairs:
    """Pair every hit on unique hash u with every query entry whose hash is u."""
    if len(hits.hash_pos) == 0:
        z = np.zeros(0, dtype=np.int64)
        return Pairs(z, z, z, z)
    order = np.argsort(inverse, kind="stable")
    q_counts = np.bincount(inverse, minlength=len(unique))
    q_starts = np.cumsum(q_counts) - q_counts
    per_hit = q_counts[hits.hash_pos]
    total = int(per_hit.sum())
    hit_rep = np.repeat(np.arange(len(hits.hash_pos)), per_hit)
    within = np.arange(total) - np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
    q_entry = order[q_starts[hits.hash_pos[hit_rep]] + within]
    q_times = query.times[q_entry]
    return Pairs(
        track_ids=hits.track_ids[hit_rep],
        rate_idx=query.rate_idx[q_entry],
        offsets=hits.times[hit_rep] - q_times,
        query_times=q_times,
    )


def best_candidates(pairs: Pairs, n_rates: int, tolerance: int, top: int, floor: int = 0) -> list[Candidate]:
    """The best-voted (track, rate, offset) per track, strongest first, at most ``top``.

    The same candidates as sorting every pair (:func:`exact_candidates`), but only the pairs that
    can still reach the top are sorted (:func:`_select`), so what grows with the pairs is a few
    linear passes. Candidates with fewer than ``floor`` votes may be left out (the recognizer
    never verifies them); ``floor`` 0 keeps the full ranking.
    """
    if len(pairs.track_ids) == 0:
        return []
    group = pairs.track_ids * n_rates + pairs.rate_idx
    ranked = _select(group, pairs.offsets, n_rates, tolerance, top, floor)
    return _finish(ranked, group, pairs.offsets, n_rates, tolerance)


def exact_candidates(pairs: Pairs, n_rates: int, tolerance: int, top: int) -> list[Candidate]:
    """:func:`best_candidates` by sorting every pair: the reference the pruned vote equals."""
    if len(pairs.track_ids) == 0:
        return []
    group = pairs.track_ids * n_rates + pairs.rate_idx
    ranked = _ranked(group, pairs.offsets, n_rates, tolerance, top, 0)
    return _finish(ranked, group, pairs.offsets, n_rates, tolerance)


def _windows(group: np.ndarray, offsets: np.ndarray, tolerance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (group, offset) keys in order, their pair counts, and each key's window:
    the pairs of its group within ±tolerance of its offset."""
    keys = (group << _OFFSET_BITS) | (offsets + _OFFSET_BIAS)
    ukeys, counts = np.unique(keys, return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    lo = np.searchsorted(ukeys, ukeys - tolerance, side="left")
    hi = np.searchsorted(ukeys, ukeys + tolerance, side="right")
    return ukeys, counts, cum[hi] - cum[lo]


def _offsets_of(ukeys: np.ndarray) -> np.ndarray:
    return (ukeys & ((1 << _OFFSET_BITS) - 1)).astype(np.int64) - _OFFSET_BIAS


_Ranked = list[tuple[int, int, int]]  # (group, offset, votes) per track, best first


def _ranked(group: np.ndarray, offsets: np.ndarray, n_rates: int, tolerance: int, top: int, level: int) -> _Ranked:
    """The best window per track, strongest first (ties: the lower group, then the lower
    offset), at most ``top``, of windows with at least ``level`` votes."""
    if len(group) == 0:
        return []
    ukeys, _, window = _windows(group, offsets, tolerance)
    order = np.argsort(-window, kind="stable")
    order = order[window[order] >= level]
    ugroup = ukeys >> _OFFSET_BITS
    _, first = np.unique(ugroup[order] // n_rates, return_index=True)
    chosen = order[np.sort(first)][:top]
    offs = _offsets_of(ukeys)
    return [(int(ugroup[i]), int(offs[i]), int(window[i])) for i in chosen]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: multiply, keep the top bits
MIN_PRUNE = 4096  # fewer pairs than this are sorted outright: pruning would not pay


def _select(group: np.ndarray, offsets: np.ndarray, n_rates: int, tolerance: int, top: int, floor: int) -> _Ranked:
    """:func:`_ranked` over all pairs (level 0), sorting only the pairs that can decide it.

    A window (the pairs of one group within ±tolerance of an offset) lies inside at most two
    adjacent cells of ``2**k`` ≥ 2·tolerance + 1 offsets, so the pair counts of those cells bound
    it from above. The cells are counted in a hashed table (np.bincount, no sort); a collision
    only adds to a count, so the bound stays an upper bound. For a level T, every pair whose
    bound reaches T is kept together with all pairs of the cells its window spans, so its window
    is counted exactly. When at least ``top`` tracks then show a window ≥ T, the top-th best
    window W ≥ T, every window ≥ W was counted exactly (bound ≥ count ≥ T) and every window
    counted short is < T: the ranking is the exact one. Otherwise T is lowered (four times the
    pairs) and tried again; at ``floor`` what reaches it is exact, which is all that caller asks.
    """
    n = len(group)
    if n < MIN_PRUNE:
        return _ranked(group, offsets, n_rates, tolerance, top, 0)
    k = max(1, (2 * tolerance).bit_length())  # 2**k >= 2·tolerance + 1
    width = 1 << k
    biased = offsets + _OFFSET_BIAS
    rem = biased & (width - 1)
    bits = min(24, max(12, (2 * n).bit_length()))  # a table of ≥ 2n cells: few collisions
    shift = np.uint64(64 - bits)
    hashed = ((group << 32) | (biased >> k)).astype(np.uint64) * _GOLDEN  # wraps mod 2**64: hashing
    own = (hashed >> shift).astype(np.intp)
    below = np.flatnonzero(rem < tolerance)  # windows reaching into the cell below
    above = np.flatnonzero(rem + tolerance >= width)  # ... into the cell above
    cell_below = ((hashed[below] - _GOLDEN) >> shift).astype(np.intp)
    cell_above = ((hashed[above] + _GOLDEN) >> shift).astype(np.intp)
    cells = np.bincount(own, minlength=1 << bits)
    bound = cells[own]
    bound[below] += cells[cell_below]
    bound[above] += cells[cell_above]
    at_least = np.cumsum(np.bincount(bound)[::-1])[::-1]  # at_least[t]: pairs with bound ≥ t
    lowest = max(floor, 1)  # every pair's bound is ≥ 1: level 1 keeps them all
    level = max(int(np.flatnonzero(at_least >= min(n, 64 * max(top, 4)))[-1]), lowest)
    while True:
        strong = bound >= level
        spanned = np.zeros(1 << bits, dtype=bool)
        spanned[own[strong]] = True
        spanned[cell_below[strong[below]]] = True
        spanned[cell_above[strong[above]]] = True
        keep = spanned[own]
        ranked = _ranked(group[keep], offsets[keep], n_rates, tolerance, top, level)
        if len(ranked) >= top or level <= lowest:
            return ranked
        want = min(n, 4 * int(at_least[level]))
        level = max(min(int(np.flatnonzero(at_least >= want)[-1]), level - 1), lowest)


def _finish(ranked: _Ranked, group: np.ndarray, offsets: np.ndarray, n_rates: int, tolerance: int) -> list[Candidate]:
    """Candidates of the ranked windows, with their group's pair count and runner-up counted
    over all of the group's pairs."""
    if not ranked:
        return []
    chosen = np.array([g for g, _, _ in ranked], dtype=np.int64)
    sel = np.isin(group, chosen)
    ukeys, counts, window = _windows(group[sel], offsets[sel], tolerance)
    ugroup = ukeys >> _OFFSET_BITS
    offs = _offsets_of(ukeys)
    out = []
    for g, offset, votes in ranked:
        a, b = np.searchsorted(ugroup, [g, g + 1])
        far = np.abs(offs[a:b] - offset) > 2 * tolerance + 1
        out.append(
            Candidate(
                track_id=g // n_rates,
                rate_idx=g % n_rates,
                offset=offset,
                votes=votes,
                track_pairs=int(counts[a:b].sum()),
                runner_up=int(window[a:b][far].max()) if far.any() else 0,
            )
        )
    return out


def searched_groups(pairs: Pairs, n_rates: int) -> int:
    """How many (track, rate) groups the vote searched: those holding at least one pair."""
    if len(pairs.track_ids) == 0:
        return 0
    return int(np.count_nonzero(np.bincount(pairs.track_ids * n_rates + pairs.rate_idx)))
