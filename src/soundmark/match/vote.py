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


def best_candidates(pairs: Pairs, n_rates: int, tolerance: int, top: int) -> list[Candidate]:
    """The best-voted (track, rate, offset) per track, strongest first, at most ``top``."""
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
    # Pairs per (track, rate): the background a chance alignment is drawn from.
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
