"""An in-memory fingerprint index: the reference backend of the index contract.

Implements both ports (``IndexBackend``) with every live posting in RAM and the same results as
``SegmentIndex`` for the same data, so the contract tests in ``tests/index/contract.py`` run
against both; ``Store(..., index_backend="memory")`` uses it for tests. Nothing is persisted, so
it only ever sees its own process's writes.

Data, per track (as given in ``TrackPostings``):
  hashes  uint32 (n,)       fingerprint hashes
  times   int32 (n,)        reference time of each hash, in frames
  peaks   int32 (m, 2)      frame, bin of the spectral peaks, sorted by frame (for verification)
``lookup`` answers from one merged table sorted by (hash, track id, time), rebuilt lazily after
the first read that follows a change.

Writes follow the ports' steps: ``write`` stages a copy, ``publish``/``remove`` record the change
as pending, ``refresh`` applies what is pending (the store calls it once its transaction has
committed) and ``abort`` drops it.

Where it differs from ``SegmentIndex`` by design: a removal frees a track's postings at once, so
the per-hash cap of ``lookup`` and ``postings()`` count live postings only (segments keep counting
a removed track's postings until compaction); it has no segments (``stats().segments`` is 0 and
``compact`` has nothing to do); ``track_peaks`` of a removed track is empty in both.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from soundmark.index.base import (
    Hits,
    IndexStats,
    TrackPostings,
    Written,
    WrittenPart,
    budget_dropped,
    within_budget,
)


class MemoryIndex:
    """A fingerprint index held entirely in memory."""

    def __init__(self) -> None:
        self._tracks: dict[int, TrackPostings] = {}
        self._used: set[int] = set()  # ids ever written, so a removed id is never reused
        self._staged: dict[str, list[TrackPostings]] = {}
        self._pending_add: list[str] = []
        self._pending_remove: set[int] = set()
        self._keys = np.zeros(0, dtype=np.uint32)
        self._track_ids = np.zeros(0, dtype=np.int64)
        self._times = np.zeros(0, dtype=np.int64)
        self._dirty = False

    # --- writing ------------------------------------------------------------------------------
    def write(self, batch: Sequence[TrackPostings]) -> Written:
        """Stage copies of ``batch``; an id that was written before (even if removed since) is a
        ``ValueError`` and nothing of the batch is staged."""
        ids = [int(p.track_id) for p in batch]
        reused = sorted({i for i, n in Counter(ids).items() if n > 1 or i in self._used})
        if reused:
            raise ValueError(f"track ids already used: {reused}")
        for p in batch:
            if len(p.hashes) != len(p.times):
                raise ValueError(f"track {p.track_id}: {len(p.hashes)} hashes but {len(p.times)} times")
        copies = [
            TrackPostings(
                tid,
                np.asarray(p.hashes, dtype=np.uint32).copy(),
                np.asarray(p.times, dtype=np.int32).copy(),
                np.asarray(p.peaks, dtype=np.int32).reshape(-1, 2).copy(),
            )
            for tid, p in zip(ids, batch, strict=True)
        ]
        self._used.update(ids)
        name = f"mem-{uuid.uuid4().hex[:16]}"
        self._staged[name] = copies
        size = sum(p.hashes.nbytes + p.times.nbytes + p.peaks.nbytes for p in copies)
        postings = sum(len(p.hashes) for p in copies)
        return Written(tuple(ids), (WrittenPart(name, len(copies), postings, size),))

    def publish(self, written: Written) -> None:
        self._pending_add += [part.name for part in written.parts if part.name in self._staged]

    def remove(self, track_ids: Iterable[int]) -> None:
        self._pending_remove.update(int(t) for t in track_ids)

    def abort(self, written: Written | None) -> None:
        for part in written.parts if written is not None else ():
            for t in self._staged.pop(part.name, []):
                self._used.discard(t.track_id)  # never committed: the id is free again
            if part.name in self._pending_add:
                self._pending_add.remove(part.name)
        self._pending_remove.clear()

    def add(self, batch: Sequence[TrackPostings]) -> Written:
        written = self.write(batch)
        self.publish(written)
        self.refresh()
        return written

    def compact(self, max_segments: int = 1) -> int:
        """Nothing to merge: removals already freed their postings."""
        self.refresh()
        return 0

    def cleanup(self) -> int:
        """Forget staged writes that were never published (a failed commit's)."""
        stale = [name for name in self._staged if name not in self._pending_add]
        for name in stale:
            del self._staged[name]
        return len(stale)

    # --- reading ------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Apply the published writes and removals."""
        for name in self._pending_add:
            for p in self._staged.pop(name, []):
                self._tracks[p.track_id] = p
                self._dirty = True
        self._pending_add = []
        for tid in self._pending_remove:
            if self._tracks.pop(tid, None) is not None:
                self._dirty = True
        self._pending_remove = set()

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

    def stats(self) -> IndexStats:
        size = sum(p.hashes.nbytes + p.times.nbytes + p.peaks.nbytes for p in self._tracks.values())
        return IndexStats(self.postings(), 0, size)

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int, budget: int | None = None) -> Hits:
        """Postings of ``hashes`` (unique uint32); hashes with more than ``max_postings_per_hash``
        postings are skipped, and with a ``budget`` the commonest beyond it (``within_budget``).
        ``Hits.hash_pos`` indexes ``hashes``; all three arrays are int64."""
        keys, tids, times = self._table()
        q = np.asarray(hashes, dtype=np.uint32)
        lo = np.searchsorted(keys, q, side="left").astype(np.int64)
        hi = np.searchsorted(keys, q, side="right").astype(np.int64)
        allowed = within_budget(hi - lo, max_postings_per_hash, budget)
        dropped = budget_dropped(hi - lo, max_postings_per_hash, allowed)
        counts = np.where(allowed, hi - lo, 0)
        n = int(counts.sum())
        if n == 0:
            return Hits.empty(dropped)
        pos = np.repeat(np.arange(len(q), dtype=np.int64), counts)
        idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(n, dtype=np.int64)
        return Hits(pos, tids[idx], times[idx], dropped)

    def track_peaks(self, track_id: int) -> np.ndarray:
        """Peaks (int32 (n, 2): frame, bin, sorted by frame) of a live track; empty if unknown."""
        p = self._tracks.get(int(track_id))
        if p is None:
            return np.zeros((0, 2), dtype=np.int32)
        return p.peaks.copy()
