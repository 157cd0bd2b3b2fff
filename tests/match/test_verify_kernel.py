"""verify_kernel's loops against the NumPy forms they replaced, on random reference grids and
query peaks: the same counts and the same peaks, at offsets in, across and outside the grid."""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.fingerprint.extract import warp_peaks
from soundmark.match.verify_kernel import met_at_best_offset, shift_counts

SPAN = 1 << 10


def _numpy_counts(ti, fi, grid, g0, g1, last, offsets):  # type: ignore[no-untyped-def]
    out = []
    for off in offsets:
        tt = ti + int(off)
        inside = (tt >= g0) & (tt < g1) & (tt <= last) & (tt >= 0)
        out.append((int(np.count_nonzero(grid[tt[inside] - g0, fi[inside]])), int(np.count_nonzero(inside))))
    return out


def _numpy_met(peaks, a, b, lo, start, offsets, grid, g0, g1):  # type: ignore[no-untyped-def]
    t, f = warp_peaks(peaks, a, b, lo)
    tt = np.rint(t).astype(np.int64)[None, :] + (start + offsets)[:, None]
    fi = np.broadcast_to(np.rint(f).astype(np.int64), tt.shape)
    inside = (tt >= g0) & (tt < g1) & (fi >= 0) & (fi < SPAN)
    hit = np.zeros(tt.shape, dtype=bool)
    hit[inside] = grid[tt[inside] - g0, fi[inside]]
    k = int(np.argmax(hit.sum(axis=1)))
    return hit[k], int(hit[k].sum())


def _case(seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    g0, rows = int(rng.integers(0, 500)), int(rng.integers(1, 900))
    grid = rng.random((rows, SPAN)) < 0.02
    n = int(rng.integers(0, 500))
    peaks = np.stack([np.sort(rng.integers(0, 320, n)), rng.integers(0, 480, n)], axis=1).astype(np.int32)
    return rng, g0, g0 + rows, grid, peaks


@pytest.mark.parametrize("seed", range(12))
def test_shift_counts_equal_numpy(seed: int) -> None:
    rng, g0, g1, grid, peaks = _case(seed)
    ti = peaks[:, 0].astype(np.int64)
    fi = peaks[:, 1].astype(np.int64)
    last = int(rng.integers(g0, g1 + 50))
    offsets = rng.integers(-900, g1 + 400, 40).astype(np.int64)
    hits, inside = shift_counts(ti, fi, grid, g0, g1, last, offsets)
    assert list(zip(hits.tolist(), inside.tolist(), strict=True)) == _numpy_counts(ti, fi, grid, g0, g1, last, offsets)


@pytest.mark.parametrize("seed", range(12))
def test_met_at_best_offset_equals_numpy(seed: int) -> None:
    rng, g0, g1, grid, peaks = _case(seed)
    offsets = np.arange(-2, 3)
    lo = 19
    qt, qf = peaks[:, 0].astype(np.int64), peaks[:, 1].astype(np.int64)
    for a, b in [(1.0, 1.0), (0.97, 0.97), (1.0, 1.0595), (1.0275, 1.0), (0.925, 0.9439)]:
        start = int(rng.integers(g0 - 100, g1))
        hit, n = met_at_best_offset(qt, qf, a, b, lo, start, offsets, grid, g0, g1)
        want_hit, want_n = _numpy_met(peaks, a, b, lo, start, offsets, grid, g0, g1)
        assert n == want_n
        np.testing.assert_array_equal(hit, want_hit)
