"""The segment lookup's gather, compiled: every posting of the hashes a query may read, decoded.

Why compiled: NumPy needs a repeat, an arange, a fancy-index gather and a concatenation per
segment for this (several passes and temporaries per posting, ~40 ns each at 10k tracks); here
it is one pass that copies each hash's contiguous run of posting values and decodes them in
place, into arrays allocated once for all segments.
"""

from __future__ import annotations

import numpy as np

from soundmark.jit import compiled


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
