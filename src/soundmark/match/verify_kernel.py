"""Verification's counting loops, compiled.

Why compiled: a verified candidate counts its query peaks on the reference grid at its own
offset and at 16 wrong ones, and the warp refinement counts them under ~25 rates at 5 offsets
each: some 150 small NumPy passes (a warp, a rounding, a mask, a gather, a sum, each on a few
hundred peaks) a candidate, ~40 µs apiece, 5-8 ms of a query. Here each is one loop. The
arithmetic is ``extract.warp_peaks``'s and NumPy's rounding (half to even), so the counts are
the same to the peak (tests/match/test_verify_kernel.py checks it against the NumPy forms).
"""

from __future__ import annotations

import numpy as np

from soundmark.jit import compiled


@compiled
def shift_counts(
    ti: np.ndarray, fi: np.ndarray, grid: np.ndarray, g0: int, g1: int, last: int, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per offset of ``offsets``: the peaks (``ti`` frames, ``fi`` bins in the grid's columns,
    int64) that land on a set cell of ``grid`` (rows: frames ``g0`` to ``g1``) when shifted by it,
    and the peaks that land inside those frames and the track (frames 0..``last``)."""
    hits = np.zeros(len(offsets), dtype=np.int64)
    inside = np.zeros(len(offsets), dtype=np.int64)
    for k in range(len(offsets)):
        off = offsets[k]
        h = 0
        m = 0
        for p in range(len(ti)):
            tt = ti[p] + off
            if tt >= g0 and tt < g1 and tt <= last and tt >= 0:
                m += 1
                if grid[tt - g0, fi[p]]:
                    h += 1
        hits[k] = h
        inside[k] = m
    return hits, inside


@compiled
def met_at_best_offset(
    qt: np.ndarray, qf: np.ndarray, a: float, b: float, lo: int, start: int, offsets: np.ndarray,
    grid: np.ndarray, g0: int, g1: int,
) -> tuple[np.ndarray, int]:  # fmt: skip
    """Which query peaks (frames ``qt``, band bins ``qf``) land exactly on a set cell of ``grid``
    (rows: frames ``g0`` to ``g1``) under the warp (``a``, ``b``) with query frame 0 at ``start``
    + each of ``offsets``, at the first offset where most do; and how many."""
    n = len(qt)
    span = grid.shape[1]
    tq = np.empty(n, dtype=np.int64)
    fq = np.empty(n, dtype=np.int64)
    for p in range(n):
        tq[p] = np.int64(np.rint(qt[p] * a))
        fq[p] = np.int64(np.rint((qf[p] + lo) / b - lo))
    best_k = 0
    best = -1
    for k in range(len(offsets)):
        shift = start + offsets[k]
        c = 0
        for p in range(n):
            tt = tq[p] + shift
            f = fq[p]
            if tt >= g0 and tt < g1 and f >= 0 and f < span and grid[tt - g0, f]:
                c += 1
        if c > best:
            best, best_k = c, k
    hit = np.zeros(n, dtype=np.bool_)
    shift = start + offsets[best_k]
    for p in range(n):
        tt = tq[p] + shift
        f = fq[p]
        if tt >= g0 and tt < g1 and f >= 0 and f < span and grid[tt - g0, f]:
            hit[p] = True
    return hit, max(best, 0)
