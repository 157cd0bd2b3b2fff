"""Offset-histogram voting.

Every hit pairs a query hash (at query time q, under a playback rate) with a reference posting
(track, reference time r). The audio of a true match lines up: r - q is the same for most of its
hits. Votes are counted per (track, rate, offset) with a tolerance of ±``tolerance`` frames for
the jitter of peak positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from soundmark.index.base import Hits

if TYPE_CHECKING:
    from types import ModuleType

OFFSET_BITS = 33  # a pair's key: (group or rate) << OFFSET_BITS | (offset + OFFSET_BIAS)
OFFSET_BIAS = 1 << 32
_OFFSET_BITS, _OFFSET_BIAS = OFFSET_BITS, OFFSET_BIAS
MAX_RATES = 63  # the kernel counts a track's rates in the bits of one int64


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
    """The best-voted (track, rate, offset) per track, strongest first (ties: the lower track,
    rate and offset), at most ``top``: the ranking :func:`exact_candidates` makes by sorting
    every pair, made track by track (``vote_kernel``). Candidates with fewer than ``floor``
    votes may be left out (the recognizer never verifies them); ``floor`` 0 keeps the full
    ranking."""
    if len(pairs.track_ids) == 0:
        return []
    if n_rates > MAX_RATES:
        raise ValueError(f"at most {MAX_RATES} warps a vote, not {n_rates}")
    tracks, ids, n = _dense(pairs.track_ids)
    keys, starts = _kernel().bucket_pairs(
        ids, np.asarray(pairs.rate_idx, dtype=np.int64), np.asarray(pairs.offsets, dtype=np.int64), n
    )
    return _rank(keys, starts, tracks, n_rates, tolerance, top, floor)[0]


def vote(
    query: QueryHashes, unique: np.ndarray, inverse: np.ndarray, hits: Hits,
    n_rates: int, tolerance: int, top: int, floor: int = 0,
) -> tuple[list[Candidate], int]:  # fmt: skip
    """``best_candidates(join(query, unique, inverse, hits), ...)`` without making the pairs, and
    how many (track, rate) groups hold any pair (``searched_groups``)."""
    if len(hits.hash_pos) == 0:
        return [], 0
    if n_rates > MAX_RATES:
        raise ValueError(f"at most {MAX_RATES} warps a vote, not {n_rates}")
    order = np.argsort(inverse, kind="stable")
    q_counts = np.bincount(inverse, minlength=len(unique))
    q_starts = np.cumsum(q_counts) - q_counts
    tracks, ids, n = _dense(hits.track_ids)
    i64 = np.int64
    keys, starts = _kernel().bucket_hits(
        np.asarray(hits.hash_pos, dtype=i64), ids, np.asarray(hits.times, dtype=i64), order, q_starts, q_counts,
        np.asarray(query.times, dtype=i64), np.asarray(query.rate_idx, dtype=i64), n,
    )  # fmt: skip
    return _rank(keys, starts, tracks, n_rates, tolerance, top, floor)


def _kernel() -> ModuleType:
    """The compiled loops, imported on first use: numba and LLVM load only in processes that
    vote (not in fingerprinting workers, nor in commands that never search)."""
    from soundmark.match import vote_kernel

    return vote_kernel


def warm_up() -> None:
    """Compile the vote's kernels now (or load them from numba's cache), not in a first query."""
    z = np.zeros(1, dtype=np.int64)
    query, hits = QueryHashes(np.zeros(1, dtype=np.uint32), z, z), Hits(z, z, z)
    vote(query, query.hashes, z, hits, 1, 1, 1)
    best_candidates(join(query, query.hashes, z, hits), 1, 1, 1)


def _dense(track_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, int]:
    """(tracks, ids, n): ids (< n) index the kernel's per-track buckets, tracks maps them back
    (None: the ids are the track ids). Track ids far sparser than the pairs are renumbered, so
    the buckets' histogram stays the size of the work, not of the largest id."""
    ids = np.asarray(track_ids, dtype=np.int64)
    top = int(ids.max()) + 1
    if top <= 4 * len(ids) + (1 << 20):
        return None, ids, top
    tracks, dense = np.unique(ids, return_inverse=True)
    return tracks, dense.astype(np.int64), len(tracks)


def _rank(
    keys: np.ndarray, starts: np.ndarray, tracks: np.ndarray | None,
    n_rates: int, tolerance: int, top: int, floor: int,
) -> tuple[list[Candidate], int]:  # fmt: skip
    level = max(floor, 1)
    vote_kernel = _kernel()
    bounds, groups = vote_kernel.track_bounds(keys, starts, tolerance)
    reach = np.flatnonzero(bounds >= level)  # the tracks that may hold a window of ``level``
    order = reach[np.lexsort((reach, -bounds[reach]))]
    votes, best = vote_kernel.best_windows(keys, starts, bounds, order, tolerance, level, top)
    found = np.flatnonzero(votes >= level)
    chosen = found[np.lexsort((best[found], found, -votes[found]))][:top]
    out = []
    for t in chosen.tolist():
        key = int(best[t])
        pairs, runner = vote_kernel.group_details(keys, starts, t, key, tolerance)
        out.append(
            Candidate(
                track_id=int(tracks[t]) if tracks is not None else t,
                rate_idx=key >> _OFFSET_BITS,
                offset=(key & ((1 << _OFFSET_BITS) - 1)) - _OFFSET_BIAS,
                votes=int(votes[t]),
                track_pairs=int(pairs),
                runner_up=int(runner),
            )
        )
    return out, int(groups)


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
