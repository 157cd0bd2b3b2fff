"""The segment lookup's inner loops, compiled: where a hash's postings lie, and the gather.

Why compiled:
- ``key_ranges``: a segment too small for a hash directory is binary-searched. Two
  ``np.searchsorted`` calls miss the cache at every late step of every search (~1 µs a hash:
  4 ms a query on the 78-track store); here a sample of every ``step``-th key (small enough
  for the cache) narrows each search to one block of keys, and a hash's last posting is
  found by walking its run from the first. A lookup's hashes come sorted, so each search
  gallops on from where the last one ended instead of starting over.
- ``gather``: NumPy needs a repeat, an arange, a fancy-index gather and a concatenation per
  segment (several passes and temporaries per posting, ~40 ns each at 10k tracks); here it is
  one pass that copies each hash's contiguous run of posting values and decodes them in place,
  into arrays allocated once for all segments.
"""

from __future__ import annotations

import numpy as np

from soundmark.jit import compiled


@compiled
def _lower_bound(a: np.ndarray, x: int, first: int, last: int) -> int:
    """The first index in [first, last) of sorted ``a`` whose value is >= x (``last``: none)."""
    while first < last:
        m = (first + last) >> 1
        if a[m] < x:
            first = m + 1
        else:
            last = m
    return first


@compiled
def key_ranges(keys: np.ndarray, sample: np.ndarray, step: int, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per hash of ``q``: ``np.searchsorted(keys, q, "left")`` and ``"right"`` over the
    sorted ``keys``, whose every ``step``-th key is ``sample`` (``keys[::step]``)."""
    n = len(keys)
    m = len(sample)
    lo = np.empty(len(q), dtype=np.int64)
    hi = np.empty(len(q), dtype=np.int64)
    a = 0
    for i in range(len(q)):
        x = q[i]
        if i == 0 or x < q[i - 1]:
            a = 0  # (a lookup's hashes come sorted: then every search starts where the last ended)
        # Galloping from the last answer: every sampled key before ``a`` is below x.
        if a < m and sample[a] < x:
            gap = 1
            while a + gap < m and sample[a + gap] < x:
                a += gap
                gap *= 2
            a = _lower_bound(sample, x, a + 1, min(m, a + gap))
        # keys[a * step] is the first sampled key >= x
        # keys up to (a - 1) * step are < x, so the answer lies in ((a - 1) * step, a * step]
        first = _lower_bound(keys, x, max(0, (a - 1) * step), min(n, a * step))
        end = first
        while end < n and keys[end] == x:
            end += 1
        lo[i] = first
        hi[i] = end
    return lo, hi


@compiled
def gather(
    vals: np.ndarray, tracks: np.ndarray, time_bits: int, lo: np.ndarray, hi: np.ndarray, allowed: np.ndarray,
    pos: np.ndarray, track_ids: np.ndarray, times: np.ndarray, at: int,
) -> int:  # fmt: skip
    """Writes the postings vals[lo[q]:hi[q]] of every allowed query hash q, in order, from
    index ``at`` of (pos, track_ids, times): hash position, track id (``tracks`` maps a
    segment's local track number to it), reference time. Returns the index after the last."""
    mask = (np.int64(1) << time_bits) - 1
    for q in range(len(lo)):
        if not allowed[q]:
            continue
        for i in range(lo[q], hi[q]):
            v = np.int64(vals[i])
            pos[at] = q
            track_ids[at] = tracks[v >> time_bits]
            times[at] = v & mask
            at += 1
    return at
