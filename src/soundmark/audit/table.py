"""The audit's posting table: every file's hashes in one sorted array, built once, read-only.

A folder audit fingerprints each file once and needs only what matching reads (``lookup`` and
``track_peaks`` of the ``FingerprintIndex`` port), never a write, a removal or a refresh. So
instead of a ``MemoryIndex`` (which copies every batch it stages and sorts 20 bytes a posting
when first read) the prints are appended here and sorted once: 12 bytes a posting
(hash uint32, track uint32, time int32) plus each track's peaks.

Data:
  hashes  uint32 (n,)      fingerprint hashes, sorted
  tracks  uint32 (n,)      the track (the audit's own id) of each posting
  times   int32 (n,)       the posting's time in frames
  peaks   int32 (m, 2)     frame, bin of each track's spectral peaks, sorted by frame
"""

from __future__ import annotations

import numpy as np

from soundmark.index.base import Hits


class PostingTable:
    """Postings of many tracks, appended with ``add`` and sorted by ``freeze`` before any read."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._peaks: dict[int, np.ndarray] = {}
        self._keys = np.zeros(0, dtype=np.uint32)
        self._tracks = np.zeros(0, dtype=np.uint32)
        self._times = np.zeros(0, dtype=np.int32)

    def add(self, track_id: int, hashes: np.ndarray, times: np.ndarray, peaks: np.ndarray) -> None:
        """One track's hashes (uint32), their times (int32 frames) and peaks (int32 (m, 2))."""
        if track_id in self._peaks:
            raise ValueError(f"track {track_id} added twice")
        if len(hashes) != len(times):
            raise ValueError(f"track {track_id}: {len(hashes)} hashes but {len(times)} times")
        self._parts.append(
            (np.asarray(hashes, dtype=np.uint32), np.full(len(hashes), track_id, dtype=np.uint32),
             np.asarray(times, dtype=np.int32))
        )  # fmt: skip
        kept = np.array(peaks, dtype=np.int32).reshape(-1, 2)
        kept.flags.writeable = False
        self._peaks[track_id] = kept

    def freeze(self) -> None:
        """Sort what was added (by hash, then by the order added); later ``add`` calls are merged
        in by the next ``freeze``."""
        if not self._parts:
            return
        keys = np.concatenate([self._keys, *(p[0] for p in self._parts)])
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        del keys
        self._tracks = np.concatenate([self._tracks, *(p[1] for p in self._parts)])[order]
        self._times = np.concatenate([self._times, *(p[2] for p in self._parts)])[order]
        self._parts = []

    def postings(self) -> int:
        return len(self._keys) + sum(len(p[0]) for p in self._parts)

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int) -> Hits:
        """As ``FingerprintIndex.lookup``: postings of ``hashes`` (unique uint32), hashes with
        more than ``max_postings_per_hash`` postings skipped (stop-words)."""
        q = np.asarray(hashes, dtype=np.uint32)
        lo = np.searchsorted(self._keys, q, side="left").astype(np.int64)
        hi = np.searchsorted(self._keys, q, side="right").astype(np.int64)
        counts = np.where(hi - lo <= max_postings_per_hash, hi - lo, 0)
        n = int(counts.sum())
        if n == 0:
            return Hits.empty()
        pos = np.repeat(np.arange(len(q), dtype=np.int64), counts)
        idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(n, dtype=np.int64)
        return Hits(pos, self._tracks[idx].astype(np.int64), self._times[idx].astype(np.int64))

    def track_peaks(self, track_id: int) -> np.ndarray:
        """Peaks (int32 (m, 2): frame, bin, sorted by frame; read-only) of a track; (0, 2) if unknown."""
        peaks = self._peaks.get(int(track_id))
        return peaks if peaks is not None else np.zeros((0, 2), dtype=np.int32)
