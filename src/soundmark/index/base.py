"""The contract every fingerprint index backend fulfils.

Matching code talks only to this Protocol, so a server-grade backend (PostgreSQL, a distributed
store) can replace the embedded one without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


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

    @staticmethod
    def empty() -> Hits:
        z = np.zeros(0, dtype=np.int64)
        return Hits(z, z, z)


@dataclass(frozen=True)
class IndexStats:
    postings: int
    segments: int
    bytes: int


class FingerprintIndex(Protocol):
    """The reads matching needs. Writing (and making other processes' commits visible) is each
    backend's own API: ``SegmentIndex.write``/``load`` under ``Store``, ``MemoryIndex.add``/``remove``.
    ``tests/index/contract.py`` holds the behaviour every backend must show."""

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int) -> Hits:
        """Postings of every hash (uint32, unique), skipping hashes with more postings than the cap
        and tracks that were removed."""
        ...

    def track_peaks(self, track_id: int) -> np.ndarray:
        """The stored peaks (int32 (n, 2): frame, bin, sorted by frame) of one track; (0, 2) when
        the track is unknown."""
        ...

    def postings(self) -> int:
        """How many postings are stored (segments keep counting a removed track's until compaction)."""
        ...
