"""Which other files might share audio with a file: candidates seeded from its rarest hashes.

Looking every hash of every file up against all the others costs the sum over hashes of their
postings squared: it grows with the square of the folder (1,000 generated 3-minute files: 558
postings met per hash, 11 billion hits). Two files holding the same recording share many
hashes at one offset, some of them rare in the folder; two unrelated files meet on a rare hash
seldom, and seldom twice at one offset. So, second by second along a file (A), its rarest
hashes that another file holds too are looked up, as many as keep the postings read within a
budget per hash of that second (``SeedSettings.postings``: the work per file does not grow with
the folder; spread over time so that every stretch of A is represented, even where its hashes
are common elsewhere), and a file met at one offset by a set share of the seeds A holds in a
shortest reported overlap becomes a candidate. The candidates are then recounted exactly on all
their hashes (``overlap.pair_hits``): the seeding decides only which pairs are compared, not
what is found between them. Measured on 1,000 generated 3-minute files (the pairs of the first 200, defaults):
unrelated pairs meet at one offset at most 0.19 of the seeds A holds in 10 s, 41 of 179,000
pairs more than 0.05 (the threshold: they are recounted for nothing); planted pairs 0.38 and
more (the least: a mix's last 30 s, the next piece's start), a margin for shorter or more
degraded copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundmark.audit.overlap import FilePrint, aligned_hits, key_track, offset_votes
from soundmark.audit.table import PostingTable
from soundmark.index.base import Hits


@dataclass(frozen=True)
class SeedSettings:
    """How candidates are seeded (frames unless named otherwise)."""

    postings: float = 4.0  # postings looked up per hash of A, block by block, rarest hashes first
    share: float = 0.05  # seed hits at one offset that make a candidate, as a share of the seeds
    #                      A holds in a stretch of the shortest reported overlap ...
    min_votes: int = 4  # ... and never fewer than this many
    block_frames: int = 31  # the blocks of A over which the seeds are spread (≈1 s)


def seed_hashes(a: FilePrint, budget: float, cap: int, block_frames: int) -> np.ndarray:
    """Indices into ``a.unique`` of A's seed hashes: in each block of ``block_frames`` of A, its
    rarest hashes held by another file too (and by at most ``cap`` postings), as many as keep
    their postings within ``budget`` per hash of the block. Taken block by block, so every
    stretch of A has seeds even where its hashes are common elsewhere in the folder."""
    counts = a.counts[a.inverse]  # per entry of A
    own = np.bincount(a.inverse, minlength=len(a.unique))[a.inverse]
    block = a.times // block_frames
    order = np.lexsort((counts, block))
    block, counts = block[order], counts[order]
    starts = np.flatnonzero(np.r_[True, block[1:] != block[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    usable = (counts > own[order]) & (counts <= cap)
    spent = np.cumsum(np.where(usable, counts, 0))
    spent -= np.repeat(spent[starts] - np.where(usable[starts], counts[starts], 0), sizes)
    chosen = usable & (spent <= budget * np.repeat(sizes, sizes))
    return np.unique(a.inverse[order[chosen]])


def candidates(
    a: FilePrint, table: PostingTable, s: SeedSettings, min_overlap: int, cap: int, tolerance: int
) -> tuple[list[int], int]:
    """Keys (above A's, ascending) of the files that A's seed hashes meet often enough at one
    offset (± ``tolerance``) to share ``min_overlap`` frames with A, and the postings read."""
    take = seed_hashes(a, s.postings, cap, s.block_frames)
    if len(take) == 0:
        return [], 0
    seeds = int(np.bincount(a.inverse, minlength=len(a.unique))[take].sum())
    min_votes = max(s.min_votes, s.share * seeds * min_overlap / (int(a.times.max()) + 1))
    found = table.lookup(a.unique[take])
    hits = aligned_hits(a, Hits(take[found.hash_pos], found.track_ids, found.times))
    if len(hits.others) == 0:
        return [], len(found.hash_pos)
    keys, _, window = offset_votes(hits, tolerance)
    return [int(k) for k in np.unique(key_track(keys[window >= min_votes]))], len(found.hash_pos)
