"""The ports of the fingerprint index: what matching reads and what the store writes.

``FingerprintIndex`` is the read side (lookup, peaks, counts, refresh), ``IndexWriter`` the write
side, and ``IndexBackend`` both: every backend (``index/segments.py`` on disk, ``index/memory.py``
in RAM, a server-grade one later) implements ``IndexBackend`` and is chosen in one place,
``index/factory.py``. Matching, ingest and the store are typed against these Protocols only;
``tests/index/contract.py`` holds the behaviour every backend must show.

How a write becomes visible, in every backend:
  1. ``write(batch)``   the slow, durable part (files fsynced, keys stored): nothing is visible yet,
                        and it runs outside any catalog transaction, so nobody waits for it.
  2. ``publish(w)`` / ``remove(ids)``   inside the store's short catalog transaction: the batch is
                        listed, the tracks tombstoned, together with the catalog rows.
  3. the transaction commits, and ``refresh()`` shows the change (another process: its next
                        ``refresh()``); if it fails instead, ``abort(w)`` forgets steps 1 and 2.
A crash between 1 and 3 leaves an unlisted write that ``cleanup()`` deletes.

Data crossing the ports:
  hashes  uint32 (n,)      fingerprint hashes
  times   int32 (n,)       reference time of each hash, in frames
  peaks   int32 (m, 2)     frame, band bin of each spectral peak, sorted by frame (verification);
                           how a backend encodes them is its own business
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from soundmark.catalog.sql import Connection


@dataclass(frozen=True)
class TrackPostings:
    """All hashes of one track, ready to index."""

    track_id: int
    hashes: np.ndarray  # uint32
    times: np.ndarray  # int32 frames
    peaks: np.ndarray  # int32 (n, 2): frame, bin — kept for verifying candidate alignments


@dataclass(frozen=True)
class Hits:
    """Postings found for a batch of query hashes.

    ``hash_pos[i]`` indexes the looked-up hash array; ``track_ids[i]`` and ``times[i]`` are the
    posting's track and reference time in frames.
    """

    hash_pos: np.ndarray  # int64
    track_ids: np.ndarray  # int64
    times: np.ndarray  # int64
    budget_dropped: int = 0  # hashes under the cap left out by the budget (their postings not read)

    @staticmethod
    def empty(budget_dropped: int = 0) -> Hits:
        z = np.zeros(0, dtype=np.int64)
        return Hits(z, z, z, budget_dropped)


def within_budget(counts: np.ndarray, cap: int, budget: int | None) -> np.ndarray:
    """Which hashes a lookup returns (bool mask over ``counts``, the postings of each hash).

    Hashes with more than ``cap`` postings are stop-words. With a ``budget`` (postings in all),
    when the others' postings exceed it the commonest go first: a hash is kept whole or not at
    all, and hashes of one length are kept or dropped together, so the result is the longest
    prefix of the hashes sorted by length whose postings fit (a hash with no postings costs
    nothing and is always kept). This is what keeps a query's work flat as the catalog grows:
    a common hash's postings are many and each says little (most are chance), a rare one's
    are few and telling.
    """
    counts = np.asarray(counts, dtype=np.int64)
    ok = counts <= cap
    if budget is None or int(counts[ok].sum()) <= budget:
        return ok
    lengths = np.sort(counts[ok])
    spent = np.cumsum(lengths)
    fits = int(np.searchsorted(spent, budget, side="right"))  # lengths[:fits] fit in the budget
    limit = int(lengths[fits])  # the first length that does not fit: it and longer ones go
    return ok & (counts < limit)


def budget_dropped(counts: np.ndarray, cap: int, allowed: np.ndarray) -> int:
    """How many hashes with postings under the cap ``within_budget`` left out (``allowed``)."""
    counts = np.asarray(counts)
    return int(np.count_nonzero((counts > 0) & (counts <= cap) & ~allowed))


@dataclass(frozen=True)
class IndexStats:
    postings: int  # stored postings (a backend may still count removed tracks until compaction)
    segments: int  # storage units that compaction would merge (0 for a backend without any)
    bytes: int  # bytes of index data held


@dataclass(frozen=True)
class WrittenPart:
    """One storage unit a write produced (a segment directory, a staged key)."""

    name: str
    tracks: int
    postings: int
    bytes: int


@dataclass(frozen=True)
class Written:
    """What ``IndexWriter.write`` made durable: the batch's tracks, in order, and its parts."""

    track_ids: tuple[int, ...]
    parts: tuple[WrittenPart, ...]

    @property
    def postings(self) -> int:
        return sum(p.postings for p in self.parts)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.parts)


class IndexDatabase(Protocol):
    """The store's SQLite catalog as a backend may use it: a backend that keeps its bookkeeping
    (its manifest of live parts, tombstones) in the catalog file writes it through ``conn`` inside
    ``transaction()``, so a commit of tracks and of their index entries is one transaction."""

    conn: Connection

    def transaction(self) -> AbstractContextManager[Connection]: ...


class FingerprintIndex(Protocol):
    """The reads matching needs."""

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int, budget: int | None = None) -> Hits:
        """Postings of every hash (uint32, unique), skipping hashes with more postings than the cap
        and tracks that were removed; with a ``budget``, only the rarest hashes whose postings
        fit in it (``within_budget``)."""
        ...

    def track_peaks(self, track_id: int) -> np.ndarray:
        """The stored peaks (int32 (n, 2): frame, bin, sorted by frame) of one track; (0, 2) when
        the track is unknown or removed."""
        ...

    def postings(self) -> int:
        """How many postings are stored (segments keep counting a removed track's until compaction)."""
        ...

    def stats(self) -> IndexStats:
        """Postings, storage units and bytes of what is visible now."""
        ...

    def refresh(self, *, force: bool = False) -> None:
        """Show what was committed since the last call (by this process or another); cheap when
        nothing changed. ``force`` reloads even when the backend saw no change (a writer after
        its own commit)."""
        ...


class IndexWriter(Protocol):
    """The writes the store makes. One writer at a time (the store's writer lock)."""

    def write(self, batch: Sequence[TrackPostings]) -> Written:
        """Store ``batch`` durably but invisibly; call it outside any transaction (it is the slow
        part). Track ids must be new; a batch that cannot be stored whole raises (``ValueError``
        for bad input, ``StoreError`` for a failing disk) and leaves nothing behind."""
        ...

    def publish(self, written: Written) -> None:
        """Inside the store's transaction: make ``written`` live when it commits."""
        ...

    def remove(self, track_ids: Iterable[int]) -> None:
        """Inside the store's transaction: hide these tracks when it commits (unknown ids are
        ignored). Their data may stay stored until ``compact``."""
        ...

    def abort(self, written: Written | None) -> None:
        """The store's transaction failed: forget what ``publish``/``remove`` recorded in it and
        delete ``written``."""
        ...

    def add(self, batch: Sequence[TrackPostings]) -> Written:
        """``write`` + ``publish`` in a short transaction of its own + ``refresh``: all or nothing."""
        ...

    def compact(self, max_segments: int = 1) -> int:
        """Rewrite storage (dropping removed tracks) until at most ``max_segments`` units remain;
        the rewrite is durable before the short transaction that swaps it in. Returns how many
        units were rewritten (0: nothing to do)."""
        ...

    def cleanup(self) -> int:
        """Delete what a writer that died before its commit left; only under the writer lock.
        Returns how many leftovers were deleted."""
        ...


class IndexBackend(FingerprintIndex, IndexWriter, Protocol):
    """A backend implements both ports; the store hands the read port to matching and the write
    port to its writer."""


@runtime_checkable
class TrackPostingsReader(Protocol):
    """An index that can give back what was written for whole tracks (the segment backend): what
    ``soundmark migrate`` copies into another store. Not part of the ports matching or the store
    use; a backend without it simply lacks it."""

    def read_tracks(self, track_ids: Iterable[int], max_postings: int) -> Iterator[TrackPostings]:
        """The postings (hashes, times) and peaks of the live tracks among ``track_ids``, in the
        backend's own order; unknown or removed ids are skipped. Memory is bounded by about
        ``max_postings`` postings (or one track's, when larger), not by the index."""
        ...


def add_in_own_transaction(index: IndexBackend, db: IndexDatabase, batch: Sequence[TrackPostings]) -> Written:
    """``IndexWriter.add`` of a backend that keeps its manifest in the catalog ``db``: ``write``,
    ``publish`` in a short transaction of its own (``abort`` if it fails), ``refresh``."""
    written = index.write(batch)
    try:
        with db.transaction():
            index.publish(written)
    except BaseException:
        index.abort(written)
        raise
    index.refresh(force=True)
    return written


def check_batch(batch: Sequence[TrackPostings], max_peak_frame: int, bin_span: int) -> None:
    """Refuse, before anything is written, a batch a backend cannot hold: empty, a track twice,
    hashes and times of different lengths, times outside [0, 2**31) frames, or peaks past the
    backend's peak code (frames up to ``max_peak_frame``, bins below ``bin_span``)."""
    if not batch:
        raise ValueError("empty batch")
    ids = [int(p.track_id) for p in batch]
    if len(set(ids)) != len(ids):
        raise ValueError("a track id appears twice in one batch")
    for p in batch:
        if len(p.hashes) != len(p.times):
            raise ValueError(f"track {p.track_id}: {len(p.hashes)} hashes but {len(p.times)} times")
        if len(p.times) and (int(np.min(p.times)) < 0 or int(np.max(p.times)) >= 2**31):
            raise ValueError(f"track {p.track_id}: times must lie in [0, 2**31) frames")
        peaks = np.asarray(p.peaks).reshape(-1, 2)
        if len(peaks) and not (
            0 <= int(peaks[:, 0].min()) <= int(peaks[:, 0].max()) <= max_peak_frame
            and 0 <= int(peaks[:, 1].min()) <= int(peaks[:, 1].max()) < bin_span
        ):
            raise ValueError(f"track {p.track_id}: peaks need frames ≤ {max_peak_frame} and bins < {bin_span}")
