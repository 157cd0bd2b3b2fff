"""An in-memory fingerprint index: the reference backend of the index contract.

Holds every live posting in RAM and answers the same reads as ``SegmentIndex`` (``lookup``,
``track_peaks``, ``postings``) with the same results for the same data, so the contract tests in
``tests/index/contract.py`` can run against both. Nothing is persisted; it suits tests, tools
and small catalogs.

Data, per track (as given in ``TrackPostings``):
  hashes  uint32 (n,)       fingerprint hashes
  times   int32 (n,)        reference time of each hash, in frames
  peaks   int32 (m, 2)      frame, bin of the spectral peaks, sorted by frame (for verification)
``lookup`` answers from one merged table sorted by (hash, track id, time), rebuilt lazily after
the first read that follows an ``add`` or ``remove``.

Where it differs from ``SegmentIndex`` by design: ``remove`` frees a track's postings at once, so
the per-hash cap of ``lookup`` counts live postings only (segments keep counting a removed
track's postings until compaction); ``track_peaks`` of a removed track is empty in both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from soundmark.index.base import Hits, TrackPostings


class MemoryIndex:
    """A fingerprint index held entirely in memory; ``add`` and ``remove`` take effect at once."""

    def __init__(self) -> None:
        self._tracks: dict[int, TrackPostings] = {}
        self._retired: set[int] = set()  # ids ever added, so a removed id is never reused
        self._keys = np.zeros(0, dtype=np.uint32)
        self._track_ids = np.zeros(0, dtype=np.int64)
        self._times = np.zeros(0, dtype=np.int64)
        self._dirty = False

    # --- writing ------------------------------------------------------------------------------
    def add(self, batch: Sequence[TrackPostings]) -> None:
        """Add the tracks of ``batch``; an id that was added before (even if removed since) is a
        ``ValueError`` and nothing of the batch is added."""
        ids = [int(p.track_id) for p in batch]
        reused = sorted({i for i, n in Counter(ids).items() if n > 1 or i in self._retired})
        if reused:
            raise ValueError(f"track ids already used: {reused}")
        for p in batch:
            if len(p.hashes) != len(p.times):
                raise ValueError(f"track {p.track_id}: {len(p.hashes)} hashes but {len(p.times)} times")
        for tid, p in zip(ids, batch, strict=True):
            self._tracks[tid] = TrackPostings(
                tid,
                np.asarray(p.hashes, dtype=np.uint32).copy(),
                np.asarray(p.times, dtype=np.int32).copy(),
                np.asarray(p.peaks, dtype=np.int32).reshape(-1, 2).copy(),
            )
            self._retired.add(tid)
        self._dirty = self._dirty or bool(batch)

    def remove(self, track_ids: Iterable[int]) -> None:
        """Forget the given tracks (unknown ids are ignored)."""
        for tid in track_ids:
            if self._tracks.pop(int(tid), None) is not None:
                self._dirty = True

    # --- reading ------------------------------------------------------------------------------
    def _table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._dirty:
            tracks = list(self._tracks.values())
            if tracks:
                keys = np.concatenate([p.hashes for p in tracks])
                tids = np.concatenate([np.full(len(p.hashes), p.track_id, dtype=np.int64) for p in tracks])
                times = np.concatenate([p.times.astype(np.int64) for p in tracks])
                order = np.lexsort((times, tids, keys))
                self._keys, self._track_ids, self._times = keys[order], tids[order], times[order]
            else:
                self._keys = np.zeros(0, dtype=np.uint32)
                self._track_ids = self._times = np.zeros(0, dtype=np.int64)
            self._dirty = False
        return self._keys, self._track_ids, self._times

    def postings(self) -> int:
        """Number of live postings (hash, track, time)."""
        return sum(len(p.hashes) for p in self._tracks.values())

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int) -> Hits:
        """Postings of ``hashes`` (unique uint32); hashes with more than ``max_postings_per_hash``
        postings are skipped. ``Hits.hash_pos`` indexes ``hashes``; all three arrays are int64."""
        keys, tids, times = self._table()
        q = np.asarray(hashes, dtype=np.uint32)
        lo = np.searchsorted(keys, q, side="left").astype(np.int64)
        hi = np.searchsorted(keys, q, side="right").astype(np.int64)
        counts = np.where(hi - lo <= max_postings_per_hash, hi - lo, 0)
        n = int(counts.sum())
        if n == 0:
            return Hits.empty()
        pos = np.repeat(np.arange(len(q), dtype=np.int64), counts)
        idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(n, dtype=np.int64)
        return Hits(pos, tids[idx], times[idx])

    def track_peaks(self, track_id: int) -> np.ndarray:
        """Peaks (int32 (n, 2): frame, bin, sorted by frame) of a live track; empty if unknown."""
        p = self._tracks.get(int(track_id))
        if p is None:
            return np.zeros((0, 2), dtype=np.int32)
        return p.peaks.copy()
