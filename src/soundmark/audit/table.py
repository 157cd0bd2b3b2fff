"""The audit's posting table: every file's hashes, counted and laid out once, read-only.

The audit needs, for each file, its peaks (to recompute its hashes and to verify a span) and,
for each hash, how many postings it has and whose they are. Built in two passes so that memory
holds the table and the peaks, never a copy or a sort of the table: ``add`` keeps a file's
peaks and counts its hashes in one dense counter per possible hash value; ``freeze`` lays the
postings out by hash with a counting sort (the counts give each hash its slot; each file's
hashes, recomputed from its peaks by ``pair_hashes`` exactly as extraction made them, are
written into their slots). So a posting costs 8 bytes, a file's peaks 8 bytes a peak, and the
counter and the slots 4 bytes each per possible hash (16 MiB each at the default 22-bit
hashes; the counter is dropped once the slots are laid out, a copy of the slots is used while).

Data:
  starts  uint32 (2**hash_bits + 1,) where each hash's postings begin (its count: the next minus it;
                                     int64 from 2**32 postings on)
  tracks  uint32 (n,)                the file (the audit's key) of each posting, ascending within a hash
  times   int32 (n,)                 the posting's time in frames
  peaks   int32 (m, 2) per file      frame, bin of its spectral peaks, sorted by frame
"""

from __future__ import annotations

import numpy as np

from soundmark.errors import SoundmarkError
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import Hits

MAX_HASH_BITS = 26  # a dense counter of 2**26 entries is 256 MiB: past that the table refuses


class HashLayoutError(SoundmarkError):
    """The parameters' hashes are too wide for the audit's dense table."""


class PostingTable:
    """Postings of many files: ``add`` each file, ``freeze`` once, then read."""

    def __init__(self, params: FingerprintParams) -> None:
        bits = params.freq_bits + params.df_bits + params.dt_bits
        if bits > MAX_HASH_BITS:
            raise HashLayoutError(f"hashes of {bits} bits are too wide to audit (at most {MAX_HASH_BITS})")
        self._params = params
        self._counts: np.ndarray | None = np.zeros(1 << bits, dtype=np.uint32)
        self._peaks: dict[int, np.ndarray] = {}
        self._starts = np.zeros(0, dtype=np.int64)
        self._tracks = np.zeros(0, dtype=np.uint32)
        self._times = np.zeros(0, dtype=np.int32)

    def add(self, key: int, peaks: np.ndarray, hashes: np.ndarray | None = None) -> None:
        """One file's peaks (int32 (m, 2): frame, bin, sorted by frame) and, when at hand, its
        hashes (uint32; else recomputed from the peaks)."""
        if self._counts is None:
            raise RuntimeError("the table is frozen")
        if key in self._peaks:
            raise ValueError(f"file {key} added twice")
        kept = np.array(peaks, dtype=np.int32).reshape(-1, 2)
        kept.flags.writeable = False
        self._peaks[key] = kept
        if hashes is None:
            hashes, _ = self.hashes(key)
        values, counts = np.unique(np.asarray(hashes, dtype=np.uint32), return_counts=True)
        self._counts[values] += counts.astype(np.uint32)

    def freeze(self) -> None:
        """Lay the postings out by hash (files in ascending key within a hash)."""
        if self._counts is None:
            return
        wide = int(self._counts.sum(dtype=np.int64)) >= 1 << 32
        self._starts = np.zeros(len(self._counts) + 1, dtype=np.int64 if wide else np.uint32)
        np.cumsum(self._counts, out=self._starts[1:])
        self._counts = None
        fill = self._starts[:-1].copy()
        n = int(self._starts[-1])
        self._tracks = np.empty(n, dtype=np.uint32)
        self._times = np.empty(n, dtype=np.int32)
        for key in sorted(self._peaks):
            hashes, times = self.hashes(key)
            order = np.argsort(hashes, kind="stable")
            values, first, counts = np.unique(hashes[order], return_index=True, return_counts=True)
            rank = np.arange(len(order)) - np.repeat(first, counts)
            slots = np.repeat(fill[values], counts) + rank
            self._tracks[slots] = key
            self._times[slots] = times[order]
            fill[values] += counts.astype(fill.dtype)

    def keys(self) -> list[int]:
        return sorted(self._peaks)

    def postings(self) -> int:
        return len(self._tracks)

    def nbytes(self) -> int:
        """Bytes held: the table, its slots and every file's peaks."""
        held = self._starts.nbytes + self._tracks.nbytes + self._times.nbytes
        return held + sum(p.nbytes for p in self._peaks.values())

    def hits_per_hash(self, cap: int) -> float:
        """Postings met on average by a posting's hash looked up against every file, hashes with
        more than ``cap`` postings left out: the cost per hash of comparing all with all."""
        counts = np.diff(self._starts).astype(np.float64)
        counts = counts[(counts > 0) & (counts <= cap)]
        return float((counts**2).sum() / counts.sum()) if len(counts) else 0.0

    def hashes(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """A file's hashes (uint32) and their anchor times (int32 frames), from its peaks."""
        peaks = self.track_peaks(key)
        return pair_hashes(peaks[:, 0], peaks[:, 1], self._params, self._params.fanout)

    def counts(self, hashes: np.ndarray) -> np.ndarray:
        """Postings (int64) of each of ``hashes`` over all files."""
        h = np.asarray(hashes, dtype=np.int64)
        return (self._starts[h + 1] - self._starts[h]).astype(np.int64)

    def lookup(self, hashes: np.ndarray) -> Hits:
        """Every posting of each of ``hashes`` (unique uint32); ``hash_pos`` indexes ``hashes``."""
        h = np.asarray(hashes, dtype=np.int64)
        lo = self._starts[h].astype(np.int64)
        counts = self._starts[h + 1].astype(np.int64) - lo
        n = int(counts.sum())
        if n == 0:
            return Hits.empty()
        pos = np.repeat(np.arange(len(h), dtype=np.int64), counts)
        idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(n, dtype=np.int64)
        return Hits(pos, self._tracks[idx].astype(np.int64), self._times[idx].astype(np.int64))

    def track_peaks(self, key: int) -> np.ndarray:
        """Peaks (int32 (m, 2): frame, bin, sorted by frame; read-only) of a file; (0, 2) if unknown."""
        peaks = self._peaks.get(int(key))
        return peaks if peaks is not None else np.zeros((0, 2), dtype=np.int32)
