"""The on-disk layout of one segment: its files, its ``meta.json``, and the posting value code.

Read by ``index/segments.py`` (the backend) and written by it and by ``index/merge.py`` (the
streaming compaction); nothing else touches segment files.

Files of a segment directory (all .npy, one dimension):
  keys.npy           uint32 (postings,)   sorted hashes
  vals.npy           uint32 or uint64 (postings,)   (local track << time_bits) | time frame
  tracks.npy         int64 (tracks,)      local track → global track id
  track_postings.npy int64 (tracks,)      postings of each local track (layout 2; tombstone sizing)
  peaks.npy          uint32 (peaks,)      (frame << PEAK_BIN_BITS) | bin, per track in time order
  peak_starts.npy    int64 (tracks + 1,)  where each local track's peaks start
  directory.npy      int32 or int64 (2**bits + 1,)   start of every hash value's run (layout 2,
                     only in segments of at least DIRECTORY_MIN_POSTINGS postings)
  meta.json          layout 1: {"time_bits", "postings"};
                     layout 2: {"layout": 2, "time_bits", "vals": "u32"|"u64", "postings",
                                "tracks", "max_time", "directory": bool}

Why the value code is chosen per segment (measured on this machine, 200,000 hits decoded, see
``benchmarks/compaction.py``): the shift code ``local << time_bits | time`` decodes with one
shift, one mask and one gather (0.5-3.7 ms per 200,000 hits from 1k to 1M tracks); a code
numbering frames across the whole segment (``track_base[local] + time``, always 32 bits up to
38,000 h a segment) needs a binary search per hit (18-77 ms): too slow for the query path. So a
segment keeps the 4-byte shift code (8 bytes a posting with its key) whenever its track count
and its longest track fit 32 bits together, and switches to an 8-byte value (12 bytes a
posting) when not: one 6 h track (20 time bits) no longer caps a segment at 4,096 tracks, and
the large merged segments of a big catalog pay 50 % more bytes, never a slower lookup.
Layout 1 segments (every store written before layout 2) keep their meta.json and are read as
they are; compaction rewrites them in layout 2.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LAYOUT_VERSION = 2

# Segments with at least this many postings carry a hash directory on disk (4 or 8 bytes per
# possible hash, memory-mapped, so every process shares one copy through the page cache);
# smaller ones are searched with two binary searches, which at this size cost about the same.
DIRECTORY_MIN_POSTINGS = 1 << 21
# Hash spaces up to this many bits get a directory (4 bytes per possible hash at most 32 MB).
DIRECTORY_MAX_BITS = 23

PEAK_BIN_BITS = 10  # a stored peak's bin is below BIN_SPAN; frame * BIN_SPAN + bin codes a peak
BIN_SPAN = 1 << PEAK_BIN_BITS
MAX_PEAK_FRAME = (1 << (32 - PEAK_BIN_BITS)) - 1  # the largest frame a packed peak holds


def time_bits_for(max_time: int) -> int:
    """Bits the time field takes when the latest posting lies at ``max_time`` frames."""
    return max(1, int(max_time).bit_length())


def max_tracks_for(max_time: int) -> int:
    """How many tracks fit the 4-byte value code when the longest reaches ``max_time`` frames."""
    time_bits = time_bits_for(max_time)
    return 1 << (32 - time_bits) if time_bits < 32 else 0


def vals_dtype(n_tracks: int, max_time: int) -> np.dtype:
    """The value code of a segment: uint32 when its tracks and times fit 32 bits, else uint64."""
    return np.dtype(np.uint32) if n_tracks <= max_tracks_for(max_time) else np.dtype(np.uint64)


def directory_bits(max_key: int, postings: int) -> int | None:
    """Bits of the hash directory a segment gets (None: searched by binary search instead)."""
    bits = int(max_key).bit_length()
    if postings < DIRECTORY_MIN_POSTINGS or bits > DIRECTORY_MAX_BITS:
        return None
    return bits


def directory_dtype(postings: int) -> np.dtype:
    return np.dtype(np.int32) if postings < 2**31 else np.dtype(np.int64)


def pack_peaks(peaks: np.ndarray) -> np.ndarray:
    packed = (peaks[:, 0].astype(np.uint32) << np.uint32(PEAK_BIN_BITS)) | peaks[:, 1].astype(np.uint32)
    return packed.astype(np.uint32)


def unpack_peaks(packed: np.ndarray) -> np.ndarray:
    p = packed.astype(np.int64)
    return np.stack([p >> PEAK_BIN_BITS, p & (BIN_SPAN - 1)], axis=1).astype(np.int32)


@dataclass(frozen=True)
class SegmentMeta:
    """A segment's meta.json."""

    layout: int
    time_bits: int
    vals: str  # "u32" | "u64"
    postings: int
    tracks: int | None = None  # None: layout 1 does not record it
    max_time: int | None = None
    directory: bool = False

    @property
    def vals_dtype(self) -> np.dtype:
        return np.dtype(np.uint32) if self.vals == "u32" else np.dtype(np.uint64)

    @staticmethod
    def new(*, postings: int, tracks: int, max_time: int, directory: bool) -> SegmentMeta:
        code = "u32" if vals_dtype(tracks, max_time) == np.uint32 else "u64"
        return SegmentMeta(LAYOUT_VERSION, time_bits_for(max_time), code, postings, tracks, max_time, directory)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @staticmethod
    def read(path: Path) -> SegmentMeta:
        """Parse ``path`` (a meta.json of layout 1 or 2); KeyError/ValueError when malformed."""
        raw = json.loads(path.read_text())
        layout = int(raw.get("layout", 1))
        if layout == 1:
            return SegmentMeta(1, int(raw["time_bits"]), "u32", int(raw["postings"]))
        if layout != LAYOUT_VERSION:
            raise ValueError(f"segment layout {layout} is newer than this soundmark reads ({LAYOUT_VERSION})")
        if raw["vals"] not in ("u32", "u64"):
            raise ValueError(f"unknown value code {raw['vals']!r}")
        return SegmentMeta(
            layout,
            int(raw["time_bits"]),
            str(raw["vals"]),
            int(raw["postings"]),
            int(raw["tracks"]),
            int(raw["max_time"]),
            bool(raw["directory"]),
        )
