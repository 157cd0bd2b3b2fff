"""The segment lookup's compiled loops give exactly what NumPy gives: ``key_ranges`` the two
``np.searchsorted`` sides, on sorted keys with runs, gaps and hashes outside their range, for
hashes in any order."""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.index.segment_kernels import key_ranges


@pytest.mark.parametrize(("n", "space", "step"), [(0, 50, 64), (1, 5, 64), (63, 40, 64), (64, 40, 64),
                                                  (65, 40, 64), (5000, 300, 64), (20_000, 1 << 22, 64),
                                                  (10_000, 100, 7), (3000, 3000, 1)])  # fmt: skip
def test_key_ranges_are_both_sides_of_searchsorted(n: int, space: int, step: int) -> None:
    rng = np.random.default_rng(n + space + step)
    keys = np.sort(rng.integers(0, space, size=n)).astype(np.uint32)  # runs of equal keys, and gaps
    q = np.unique(np.concatenate([rng.integers(0, space + 10, size=500), [0, space + 9]])).astype(np.uint32)
    sample = np.ascontiguousarray(keys[::step])
    for order in (q, rng.permutation(q), q[::-1]):  # sorted (as lookups pass them), shuffled, reversed
        lo, hi = key_ranges(keys, sample, step, order)
        assert np.array_equal(lo, np.searchsorted(keys, order, side="left"))
        assert np.array_equal(hi, np.searchsorted(keys, order, side="right"))


def test_a_hash_held_by_every_posting_spans_the_segment() -> None:
    keys = np.full(1000, 7, dtype=np.uint32)
    lo, hi = key_ranges(keys, np.ascontiguousarray(keys[::64]), 64, np.array([6, 7, 8], dtype=np.uint32))
    assert lo.tolist() == [0, 0, 1000] and hi.tolist() == [0, 1000, 1000]
