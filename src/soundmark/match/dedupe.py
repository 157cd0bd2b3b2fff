"""Duplicate detection at ingest: does the store already hold this audio?

Exact re-adds are caught by the content hash; re-encodes and copies of the same recording are
caught here by matching a stretch of the new track's own hashes against the index.
"""

from __future__ import annotations

import math

import numpy as np

from soundmark.match.recognizer import query_budget
from soundmark.match.vote import QueryHashes, vote
from soundmark.store import NewTrack, Store

WINDOW_SECONDS = 30.0
MIN_SHARED = 0.25  # fraction of the window's hashes that must align on one offset


def find_duplicate(store: Store, track: NewTrack) -> int | None:
    """Id of a stored track sharing this track's audio (same offset throughout), else None."""
    if store.index.postings() == 0 or len(track.hashes) == 0:
        return None
    p = store.params
    frames = int(WINDOW_SECONDS / p.frame_seconds)
    mid = int(np.median(track.times))
    sel = (track.times >= mid - frames // 2) & (track.times < mid + frames // 2)
    hashes, times = track.hashes[sel], track.times[sel].astype(np.int64)
    if len(hashes) < 20:
        return None
    query = QueryHashes(hashes, times, np.zeros(len(hashes), dtype=np.int64))
    unique, inverse = np.unique(hashes, return_inverse=True)
    # Read under the retry's posting budget, so an add costs the same work at any catalog size:
    # a copy shares its hashes whatever their commonness, so the share is counted over the
    # hashes the budget read.
    budget = query_budget(p, len(unique), p.query_postings_per_hash_retry)
    hits = store.index.lookup(unique, p.max_postings_per_hash, budget)
    read = 1.0 - hits.budget_dropped / len(unique)
    need = math.ceil(MIN_SHARED * len(hashes) * read)
    cands, _ = vote(query, unique, inverse, hits, 1, 1, 1, floor=need)  # fewer: never a duplicate
    if not cands or cands[0].votes < need:
        return None
    other = store.catalog.get_track(cands[0].track_id)
    if other is None or abs(other.duration - track.duration) > max(2.0, 0.02 * track.duration):
        return None
    return other.id
