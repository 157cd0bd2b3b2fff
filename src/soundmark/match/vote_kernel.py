"""The offset vote's inner loops, compiled (numba).

Why compiled: a query of a large catalog pairs millions of postings with its hashes, and every
vectorised NumPy formulation of the vote (sorting every pair, or hashing them into a table of
cells) makes several passes of random memory access over them: ~150 ns a pair at 10k tracks,
most of the search's time. Here the pairs are bucketed by track in two linear passes (a counting
sort: one histogram the size of the track-id range, which stays in cache) and each track's few
hundred keys are sorted and swept where they lie, in cache: ~10-20 ns a pair, and the same
answer, which the tests check against sorting every pair (``vote.exact_candidates``).

A pair's key within its track is ``rate << OFFSET_BITS | (offset + OFFSET_BIAS)``: keys in
order are (rate, offset) in order, and a key ± tolerance stays within its rate.
"""

from __future__ import annotations

import numpy as np

from soundmark.jit import compiled
from soundmark.match.vote import OFFSET_BIAS, OFFSET_BITS


@compiled
def bucket_hits(
    hash_pos: np.ndarray, hit_tracks: np.ndarray, hit_times: np.ndarray, q_order: np.ndarray, q_starts: np.ndarray,
    q_counts: np.ndarray, q_times: np.ndarray, q_rates: np.ndarray, n_tracks: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Every (hit, query entry of its hash) pair's key, grouped by track: (keys, starts), where
    track t's keys are keys[starts[t]:starts[t + 1]] (in no particular order)."""
    counts = np.zeros(n_tracks + 1, dtype=np.int64)
    for h in range(len(hash_pos)):
        counts[hit_tracks[h] + 1] += q_counts[hash_pos[h]]
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    keys = np.empty(starts[-1], dtype=np.int64)
    for h in range(len(hash_pos)):
        p = hash_pos[h]
        t = hit_tracks[h]
        base = hit_times[h] + OFFSET_BIAS
        for k in range(q_starts[p], q_starts[p] + q_counts[p]):
            e = q_order[k]
            keys[fill[t]] = (q_rates[e] << OFFSET_BITS) | (base - q_times[e])
            fill[t] += 1
    return keys, starts


@compiled
def bucket_pairs(
    track_ids: np.ndarray, rate_idx: np.ndarray, offsets: np.ndarray, n_tracks: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bucket_hits` for pairs already joined."""
    counts = np.zeros(n_tracks + 1, dtype=np.int64)
    for i in range(len(track_ids)):
        counts[track_ids[i] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    keys = np.empty(starts[-1], dtype=np.int64)
    for i in range(len(track_ids)):
        t = track_ids[i]
        keys[fill[t]] = (rate_idx[i] << OFFSET_BITS) | (offsets[i] + OFFSET_BIAS)
        fill[t] += 1
    return keys, starts


CELL_SLOTS_MIN = 2048  # a track's cell counts: a table that stays in L1 for a short run ...
CELL_SLOTS_MAX = 1 << 16  # ... and in L2 for a long one (4 slots a key up to there)


@compiled
def track_bounds(keys: np.ndarray, starts: np.ndarray, tolerance: int) -> tuple[np.ndarray, int]:
    """Per track an upper bound of its best window, and how many (track, rate) groups hold any
    pair. The window of key k, [k - tolerance, k + tolerance], lies in the cells (of
    2·tolerance + 1 offsets) of its two ends, one cell or two adjacent ones, whose counts bound
    it; the counts are kept in a small table (keys of distant cells may share a slot: that only
    adds to a count, so the bound stays a bound). Linear passes, no sorting: most tracks hold
    only chance pairs, and their bound is what lets :func:`best_windows` never sort them."""
    n_tracks = len(starts) - 1
    bounds = np.zeros(n_tracks, dtype=np.int64)
    width = 2 * tolerance + 1
    cells = np.zeros(CELL_SLOTS_MAX, dtype=np.int32)
    groups = 0
    for t in range(n_tracks):
        a, b = starts[t], starts[t + 1]
        if b == a:
            continue
        slots = CELL_SLOTS_MIN
        while slots < 4 * (b - a) and slots < CELL_SLOTS_MAX:
            slots *= 2
        mask = slots - 1
        rates = np.int64(0)
        for i in range(a, b):
            rates |= np.int64(1) << (keys[i] >> OFFSET_BITS)
            cells[(keys[i] // width) & mask] += 1
        while rates:  # the (track, rate) groups: the rates present
            rates &= rates - 1
            groups += 1
        bound = 0
        for i in range(a, b):
            c0 = (keys[i] - tolerance) // width
            c1 = (keys[i] + tolerance) // width
            m = cells[c0 & mask] + (cells[c1 & mask] if c1 != c0 else 0)
            if m > bound:
                bound = m
        for i in range(a, b):
            cells[(keys[i] // width) & mask] = 0
        bounds[t] = bound
    return bounds, groups


@compiled
def _slide(run: np.ndarray, i: int, lo: int, hi: int, tolerance: int) -> tuple[int, int]:
    """The window of sorted keys ``run`` around run[i]: (lo, hi), the first and last index
    within ±tolerance of it, moved on from the window of an earlier, smaller key."""
    k = run[i]
    while run[lo] < k - tolerance:
        lo += 1
    hi = max(hi, i)
    while hi + 1 < len(run) and run[hi + 1] <= k + tolerance:
        hi += 1
    return lo, hi


@compiled
def _best_window(run: np.ndarray, tolerance: int) -> tuple[int, int]:
    """(votes, key) of the best window of sorted keys ``run`` (ties: the lowest key)."""
    n = len(run)
    lo = 0
    hi = 0
    top = 0
    top_key = 0
    i = 0
    while i < n:
        k = run[i]
        lo, hi = _slide(run, i, lo, hi, tolerance)
        w = hi - lo + 1
        if w > top:
            top = w
            top_key = k
        while i < n and run[i] == k:  # the next distinct key
            i += 1
    return top, top_key


@compiled
def best_windows(
    keys: np.ndarray, starts: np.ndarray, bounds: np.ndarray, order: np.ndarray, tolerance: int, level: int, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """The exact best window (votes, key) of every track that can still enter the ``top`` best
    with at least ``level`` votes (others: votes 0), visiting tracks in ``order`` (bound
    descending, then track ascending) and sorting each visited track's keys in place. Stops at
    the first track whose bound cannot beat the ``top``-th best found so far (ties go to the
    lower track)."""
    votes = np.zeros(len(starts) - 1, dtype=np.int64)
    best = np.zeros(len(starts) - 1, dtype=np.int64)
    kept_votes = np.zeros(top, dtype=np.int64)  # the best so far, strongest first
    kept_track = np.zeros(top, dtype=np.int64)
    kept = 0
    for t in order:
        bound = bounds[t]
        if bound < level:
            break
        if kept == top and (bound < kept_votes[top - 1] or (bound == kept_votes[top - 1] and t > kept_track[top - 1])):
            break
        run = keys[starts[t] : starts[t + 1]]
        run.sort()
        v, k = _best_window(run, tolerance)
        votes[t] = v
        best[t] = k
        if v < level:
            continue
        j = kept if kept < top else top - 1  # insert (v, t) in order
        if kept == top and (v < kept_votes[j] or (v == kept_votes[j] and t > kept_track[j])):
            continue
        while j > 0 and (kept_votes[j - 1] < v or (kept_votes[j - 1] == v and kept_track[j - 1] > t)):
            kept_votes[j] = kept_votes[j - 1]
            kept_track[j] = kept_track[j - 1]
            j -= 1
        kept_votes[j] = v
        kept_track[j] = t
        if kept < top:
            kept += 1
    return votes, best


@compiled
def group_details(keys: np.ndarray, starts: np.ndarray, track: int, key: int, tolerance: int) -> tuple[int, int]:
    """For one track's chosen window at ``key`` (its keys sorted by :func:`best_windows`): the
    pairs of its (track, rate) group, and the best window of that group more than
    2·tolerance + 1 frames away from it (the runner-up)."""
    run = keys[starts[track] : starts[track + 1]]
    rate = key >> OFFSET_BITS
    n = len(run)
    pairs = 0
    runner = 0
    lo = 0
    hi = 0
    i = 0
    while i < n:
        k = run[i]
        if (k >> OFFSET_BITS) != rate:
            i += 1
            continue
        pairs += 1
        if abs(k - key) > 2 * tolerance + 1:
            lo, hi = _slide(run, i, lo, hi, tolerance)
            w = hi - lo + 1
            if w > runner:
                runner = w
        i += 1
    return pairs, runner
