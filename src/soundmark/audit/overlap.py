"""Aligned runs between one track and all others: the pure core of the audit.

One track (A) is looked up against other tracks' postings (``audit/seeds.py`` picks which
tracks: the candidates; ``pair_hits`` then joins A's hashes with theirs). Each hit pairs a hash
of A at time ``ta`` with a posting of track B at ``tb``; where A and B share audio, ``tb - ta`` (the
offset) is one value for every hash of the shared stretch, while chance hits scatter over all
offsets. So hits are counted per (B, offset ± tolerance); each well-voted offset is then cut into
spans along A's time axis: seconds holding enough aligned hashes, gaps of a few seconds bridged,
a span kept only when it is long and dense enough. The caller verifies a span on the stored
peaks (``match.verify.shared_peaks``) before believing it.

Units: every time and offset here is in frames (``FingerprintParams.hop`` samples).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from soundmark.index.base import Hits
from soundmark.match.vote import QueryHashes, join

_OFFSET_BITS = 24  # offsets within ±2**23 frames (74 h at 32 ms): far past the longest track
_OFFSET_BIAS = 1 << (_OFFSET_BITS - 1)


@dataclass(frozen=True)
class AlignSettings:
    """What counts as shared audio between two tracks (frames unless named otherwise)."""

    min_overlap: int  # shortest span reported
    tolerance: int = 2  # offset jitter (frames) still counted as the same alignment
    bin_frames: int = 31  # the time step along A in which aligned hashes are counted (≈1 s)
    min_bin_hashes: int = 3  # aligned hashes that make a step count as shared
    max_gap_bins: int = 4  # unshared steps bridged inside one span (a quiet bar, a dropout)
    min_density: float = 0.25  # aligned hashes per frame over a span (≈8 a second)
    max_alignments: int = 4  # offsets tried per pair of tracks, strongest first

    @property
    def min_votes(self) -> int:
        return max(1, int(self.min_overlap * self.min_density))


@dataclass(frozen=True)
class Alignment:
    """A stretch of A found again in B: B's time = A's time + ``offset``."""

    other: int  # B's track id
    offset: int
    start: int  # first frame in A
    end: int  # frame after the last aligned hash in A
    votes: int  # aligned hashes inside [start, end)


@dataclass(frozen=True)
class AlignedHits:
    """Hits of A's hashes on other tracks."""

    others: np.ndarray  # int64 track ids
    offsets: np.ndarray  # int64 frames, B time minus A time
    times: np.ndarray  # int64 frames in A


@dataclass(frozen=True)
class FilePrint:
    """One file's hashes as the comparison reads them."""

    key: int  # the audit's key of the file
    hashes: np.ndarray  # uint32 (n,)
    times: np.ndarray  # int64 (n,) frames
    unique: np.ndarray  # uint32 (u,) its distinct hashes, ascending
    inverse: np.ndarray  # int64 (n,) index of each hash in ``unique``
    counts: np.ndarray  # int64 (u,) postings of each distinct hash over all audited files


def file_print(
    key: int, hashes: np.ndarray, times: np.ndarray, counts_of: Callable[[np.ndarray], np.ndarray]
) -> FilePrint:
    """``hashes``/``times`` of file ``key``, with ``counts_of(unique)`` the folder's posting counts."""
    unique, inverse = np.unique(np.asarray(hashes, dtype=np.uint32), return_inverse=True)
    return FilePrint(key, hashes, np.asarray(times, dtype=np.int64), unique, inverse.reshape(-1), counts_of(unique))


def aligned_hits(a: FilePrint, hits: Hits) -> AlignedHits:
    """Pair every hit of ``hits`` (``hash_pos`` indexing ``a.unique``) with A's entries of that
    hash, keeping tracks with a higher key than A's only: each pair of tracks is seen once."""
    query = QueryHashes(a.hashes, a.times, np.zeros(len(a.hashes), dtype=np.int64))
    pairs = join(query, a.unique, a.inverse, hits)
    keep = pairs.track_ids > a.key
    return AlignedHits(pairs.track_ids[keep], pairs.offsets[keep], pairs.query_times[keep])


def pair_hits(a: FilePrint, others: Sequence[tuple[int, np.ndarray, np.ndarray]], usable: np.ndarray) -> AlignedHits:
    """The hits of A's hashes on the postings of ``others`` only — (key, hashes, times) each —
    counting the distinct hashes of A where ``usable`` (bool, per ``a.unique``) holds: every
    hit that a lookup of A against all files would give on these tracks, with nothing capped."""
    if not others:
        return AlignedHits(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
    keys = np.concatenate([np.asarray(h, dtype=np.uint32) for _, h, _ in others])
    tracks = np.concatenate([np.full(len(h), k, dtype=np.int64) for k, h, _ in others])
    times = np.concatenate([np.asarray(t, dtype=np.int64) for _, _, t in others])
    order = np.argsort(keys, kind="stable")
    keys, tracks, times = keys[order], tracks[order], times[order]
    lo = np.searchsorted(keys, a.unique, side="left").astype(np.int64)
    counts = np.where(usable, np.searchsorted(keys, a.unique, side="right") - lo, 0)
    n = int(counts.sum())
    if n == 0:
        return AlignedHits(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
    pos = np.repeat(np.arange(len(a.unique), dtype=np.int64), counts)
    idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(n, dtype=np.int64)
    return aligned_hits(a, Hits(pos, tracks[idx], times[idx]))


def offset_votes(hits: AlignedHits, tolerance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (track, offset) keys of ``hits``, ascending, with their hits and the hits within
    ±``tolerance`` of each offset of the same track; ``key_track`` reads a key's track."""
    keys = (hits.others << _OFFSET_BITS) | (hits.offsets + _OFFSET_BIAS)
    ukeys, counts = np.unique(keys, return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    window = (
        cum[np.searchsorted(ukeys, ukeys + tolerance, side="right")]
        - cum[np.searchsorted(ukeys, ukeys - tolerance, side="left")]
    )
    return ukeys, counts, window


def key_track(keys: np.ndarray) -> np.ndarray:
    return keys >> _OFFSET_BITS


def find_alignments(hits: AlignedHits, s: AlignSettings) -> list[Alignment]:
    """The spans A shares with each other track, strongest offset first within a pair.

    A weaker offset of the same pair is dropped when both its span in A and its span in B overlap
    those of a stronger one: a track played twice in a mix is found twice, while the repeats
    inside one song (a chorus lining up with the next chorus) add nothing.
    """
    if len(hits.others) == 0:
        return []
    keys = (hits.others << _OFFSET_BITS) | (hits.offsets + _OFFSET_BIAS)
    order = np.argsort(keys, kind="stable")
    keys, times = keys[order], hits.times[order]
    ukeys, counts, window = offset_votes(hits, s.tolerance)
    first = np.searchsorted(keys, ukeys, side="left")
    strong = np.flatnonzero(window >= s.min_votes)
    strong = strong[np.argsort(-window[strong], kind="stable")]
    found: list[Alignment] = []
    tried: dict[int, list[int]] = {}
    for best in strong:
        # The window's centre: the offset inside it that holds most hits (chance hits at its
        # edge must not move it).
        near = np.searchsorted(ukeys, [ukeys[best] - s.tolerance, ukeys[best] + s.tolerance + 1])
        i = int(near[0] + np.argmax(counts[near[0] : near[1]]))
        other = int(ukeys[i] >> _OFFSET_BITS)
        offset = int(ukeys[i] & ((1 << _OFFSET_BITS) - 1)) - _OFFSET_BIAS
        seen = tried.setdefault(other, [])
        if len(seen) >= s.max_alignments or any(abs(offset - o) <= 2 * s.tolerance + 1 for o in seen):
            continue
        seen.append(offset)
        lo = np.searchsorted(keys, keys[first[i]] - s.tolerance, side="left")
        hi = np.searchsorted(keys, keys[first[i]] + s.tolerance, side="right")
        for start, end, votes in spans(np.sort(times[lo:hi]), s):
            a = Alignment(other, offset, start, end, votes)
            if _adds_something(a, [f for f in found if f.other == other]):
                found.append(a)
    return found


def spans(times: np.ndarray, s: AlignSettings) -> list[tuple[int, int, int]]:
    """(start, end, votes) of the dense stretches of sorted aligned-hash ``times`` (frames)."""
    if len(times) == 0:
        return []
    steps = times // s.bin_frames
    counts = np.bincount(steps - steps[0])
    shared = np.flatnonzero(counts >= s.min_bin_hashes)
    if len(shared) == 0:
        return []
    breaks = np.flatnonzero(np.diff(shared) > s.max_gap_bins + 1)
    out = []
    for run in np.split(shared, breaks + 1):
        lo_step, hi_step = steps[0] + run[0], steps[0] + run[-1]
        inside = times[(steps >= lo_step) & (steps <= hi_step)]
        start, end = int(inside[0]), int(inside[-1]) + 1
        if end - start >= s.min_overlap and len(inside) >= s.min_density * (end - start):
            out.append((start, end, len(inside)))
    return out


def _adds_something(a: Alignment, kept: list[Alignment]) -> bool:
    def meets(lo1: int, hi1: int, lo2: int, hi2: int) -> bool:
        return min(hi1, hi2) - max(lo1, lo2) > 0

    for k in kept:
        if k.offset == a.offset:
            continue  # another span of the same alignment: disjoint in both by construction
        if meets(a.start, a.end, k.start, k.end) and meets(
            a.start + a.offset, a.end + a.offset, k.start + k.offset, k.end + k.offset
        ):
            return False
    return True
