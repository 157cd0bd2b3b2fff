"""Which other files might share audio with a file: candidates seeded from its rarest hashes.

Looking every hash of every file up against all the others costs the sum over hashes of their
postings squared: it grows with the square of the folder. Two files holding the same recording
share many hashes at one offset, and many of those hashes are rare in the folder; two unrelated
files meet on a rare hash seldom, and almost never twice at one offset. So a file's distinct
hashes are looked up rarest first, up to a budget of postings proportional to its own length
(``seed_postings`` per hash: the work per file does not grow with the folder), and a file met
``min_votes`` times at one offset (± ``tolerance``) becomes a candidate. The candidates are then
recounted exactly on all their hashes (``overlap.pair_hits``), so the seeding decides only who
is compared, never what is found. In a small folder the budget covers every hash and every
file that shares a hash at an offset that often is compared.
"""

from __future__ import annotations

import numpy as np

from soundmark.audit.overlap import FilePrint, aligned_hits, key_track, offset_votes
from soundmark.audit.table import PostingTable
from soundmark.index.base import Hits


def seed_hashes(a: FilePrint, budget: int) -> np.ndarray:
    """Indices into ``a.unique`` of A's rarest distinct hashes held by another file too, whose
    postings sum to at most ``budget``."""
    own = np.bincount(a.inverse, minlength=len(a.unique))
    shared = np.flatnonzero(a.counts > own)
    rarest = shared[np.argsort(a.counts[shared], kind="stable")]
    return rarest[np.cumsum(a.counts[rarest]) <= budget]


def candidates(a: FilePrint, table: PostingTable, budget: int, min_votes: int, tolerance: int) -> list[int]:
    """Keys (above A's, ascending) of the files met at least ``min_votes`` times at one offset by
    A's seed hashes."""
    take = seed_hashes(a, budget)
    if len(take) == 0:
        return []
    found = table.lookup(a.unique[take])
    hits = aligned_hits(a, Hits(take[found.hash_pos], found.track_ids, found.times))
    if len(hits.others) == 0:
        return []
    keys, _, window = offset_votes(hits, tolerance)
    return [int(k) for k in np.unique(key_track(keys[window >= min_votes]))]
