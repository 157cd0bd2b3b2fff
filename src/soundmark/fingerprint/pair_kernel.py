"""The peak pairing loop, compiled, for the query path.

Why compiled: a query is hashed under every warp of the grid (5 on the first search, up to 29
on the wide one), each a call on a few hundred peaks. ``hashes.pair_hashes`` in NumPy makes
one pass over every peak for each of the ``4 × fanout`` neighbours it considers, a dozen array
operations each: 0.7 ms a call, 5 ms of a 10 s query's 30. One loop over the anchors and their
next peaks does the same work in one pass. Indexing makes one call a track on thousands of
peaks, where NumPy's passes are cheap: it keeps the NumPy loop, so fingerprinting workers load
no LLVM.
"""

from __future__ import annotations

import numpy as np

from soundmark.jit import compiled


@compiled
def pair_indices(
    t: np.ndarray, f: np.ndarray, max_dt: float, max_df: float, fanout: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """(anchor, target) peak indices of every pair ``hashes.pair_hashes`` makes, in its order.

    ``t``, ``f`` (float64, sorted by ``t``): each anchor pairs with its next ``fanout`` peaks
    among the ``window`` that follow it whose Δt lies in [0.5, max_dt] and |Δf| <= max_df; the
    pairs come ordered by the target's distance in peaks, then by anchor (as NumPy's loop over
    distances emits them).
    """
    n = len(t)
    accept = np.zeros((window, n), dtype=np.bool_)
    total = 0
    for i in range(n):
        taken = 0
        for k in range(1, window + 1):
            j = i + k
            if j >= n or taken >= fanout:
                break
            dt = t[j] - t[i]
            if dt >= 0.5 and dt <= max_dt and abs(f[j] - f[i]) <= max_df:
                accept[k - 1, i] = True
                taken += 1
        total += taken
    ai = np.empty(total, dtype=np.int64)
    aj = np.empty(total, dtype=np.int64)
    p = 0
    for k in range(window):
        for i in range(n):
            if accept[k, i]:
                ai[p] = i
                aj[p] = i + k + 1
                p += 1
    return ai, aj
