"""Streaming merge of sorted segments: compaction in memory bounded by a chunk, not the catalog.

``merge(inputs, drop, out, chunk_postings)`` writes the postings of ``inputs`` (segment
directories, each sorted by hash, then local track, then time) as one segment in ``out``,
without the tracks in ``drop``. It is a k-way merge by hash ranges: each step picks the largest
hash bound ``K`` below which the inputs still hold at most ``chunk_postings`` postings (found by
binary search over a sample of every input's keys held in memory), takes every input's
postings below ``K``, re-bases their local track numbers into the output's numbering, drops
removed tracks, orders them by hash with a stable sort (the inputs' runs are already ordered by
track within a hash, and input ``i``'s tracks all precede input ``i + 1``'s) and appends them to
the output's .npy files. Peaks are copied per kept track, packed as they are.

Memory: about 40 bytes × ``chunk_postings`` (or × the postings of the most common hash, when
that is larger), the output's per-track arrays (8-24 bytes a track) and, for a segment large
enough to get one, its hash directory's counts (8 bytes per possible hash). The inputs are read
through mappings of their own whose pages are released after every step, so what the merge has
read does not stay resident either; the hash bounds are searched in a sample of each input's
keys (one key per eighth of a chunk, over the inputs), never by probing the mapped files. The
result is the segment today's in-memory compaction (``SegmentIndex.read_postings`` of every
segment, then ``write``) produced: same tracks in the same local order, same postings in the
same order, so lookups return the same hits.

The caller (``index/segments.py``) owns the directory: it writes the small arrays this returns,
the meta.json, fsyncs and renames ``out`` into place — the same durability path as ``write``.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from soundmark.index.segment_layout import (
    SegmentMeta,
    directory_bits,
    directory_dtype,
    time_bits_for,
    vals_dtype,
)

MERGE_CHUNK_POSTINGS = 1 << 21  # postings merged per step (measured: peak RSS +144 MB at 30 M postings)
KEY_SPACE = 1 << 32


class _Mapped:
    """One .npy file mapped read-only by this merge alone (so its pages can be released)."""

    def __init__(self, path: Path):
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
            count = int(np.prod(shape)) if shape else 1
            if fortran and len(shape) > 1:
                raise ValueError(f"{path.name}: fortran-ordered arrays are not segment files")
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if count else None
        self.array: np.ndarray = (
            np.frombuffer(self._map, dtype=dtype, count=count, offset=offset)
            if self._map is not None
            else np.zeros(0, dtype=dtype)
        )

    def release(self) -> None:
        """Drop this process's pages of the file (they stay in the page cache)."""
        if self._map is not None:
            self._map.madvise(mmap.MADV_DONTNEED)


@dataclass
class MergeInput:
    """One input segment, opened for merging."""

    keys: _Mapped
    vals: _Mapped
    peaks: _Mapped
    meta: SegmentMeta
    tracks: np.ndarray  # int64 global ids
    peak_starts: np.ndarray  # int64
    track_postings: np.ndarray | None  # int64 per local track; None in layout 1

    @staticmethod
    def open(d: Path) -> MergeInput:
        meta = SegmentMeta.read(d / "meta.json")
        counts = np.load(d / "track_postings.npy") if meta.layout >= 2 else None
        return MergeInput(
            _Mapped(d / "keys.npy"),
            _Mapped(d / "vals.npy"),
            _Mapped(d / "peaks.npy"),
            meta,
            np.load(d / "tracks.npy"),
            np.load(d / "peak_starts.npy"),
            counts,
        )

    def release(self) -> None:
        for m in (self.keys, self.vals, self.peaks):
            m.release()


@dataclass(frozen=True)
class MergeResult:
    """The merged segment's small arrays and meta (its big arrays are already in ``out``)."""

    meta: SegmentMeta
    tracks: np.ndarray  # int64
    track_postings: np.ndarray  # int64
    peak_starts: np.ndarray  # int64
    directory: np.ndarray | None


class _NpyStream:
    """A one-dimensional .npy file written in pieces: header first (the length is known), then
    appended data, then fsync."""

    def __init__(self, path: Path, dtype: np.dtype, length: int):
        self.dtype = np.dtype(dtype)
        self.length = length
        self.written = 0
        self.fh: BinaryIO = open(path, "wb")  # noqa: SIM115 (closed by close() or abandon())
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)}
        np.lib.format.write_array_header_1_0(self.fh, header)

    def append(self, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=self.dtype)
        self.fh.write(data.view(np.uint8).data)
        self.written += len(data)

    def close(self) -> None:
        if self.written != self.length:
            self.fh.close()
            raise RuntimeError(f"merge wrote {self.written} of {self.length} entries")  # a bug, never input
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def abandon(self) -> None:
        self.fh.close()


def _scan(inp: MergeInput, keep: np.ndarray, chunk: int) -> tuple[np.ndarray, int]:
    """Postings of each local track kept and the latest kept time, read in chunks (for inputs
    that record neither, or that lose tracks)."""
    n = len(inp.tracks)
    counts = np.zeros(n, dtype=np.int64)
    max_time = 0
    vals = inp.vals.array
    tb = inp.meta.time_bits
    for start in range(0, len(vals), chunk):
        v = vals[start : start + chunk].astype(np.int64)
        local = v >> tb
        kept = keep[local]
        counts += np.bincount(local, minlength=n)
        if kept.any():
            max_time = max(max_time, int((v[kept] & ((1 << tb) - 1)).max()))
        inp.vals.release()
    counts[~keep] = 0
    return counts, max_time


def _key_samples(inputs: Sequence[MergeInput], chunk: int) -> tuple[list[np.ndarray], int]:
    """Every ``step``-th key of each input, read a chunk at a time, and ``step``.

    ``_bound`` searches these instead of the mapped key arrays. A binary search over a mapped
    file faults in a page at every probe, and with large page-cache folios (Linux 6.x) a fault
    maps the whole folio around it: one bound over the eight inputs of a tiered merge mapped
    206 MB of their keys files (measured on a 10k-track store), so compaction's memory grew with
    the index. The step keeps the search's error (at most ``step`` postings an input) within an
    eighth of a chunk."""
    step = max(1, chunk // (8 * max(1, len(inputs))))
    piece = step * max(1, chunk // step)  # a multiple of step: each piece's sample stays aligned
    samples = []
    for inp in inputs:
        keys = inp.keys.array
        parts = []
        for start in range(0, len(keys), piece):
            parts.append(np.array(keys[start : start + piece : step]))
            inp.keys.release()
        samples.append(np.concatenate(parts) if parts else np.zeros(0, dtype=keys.dtype))
    return samples, step


def _sampled_end(sample: np.ndarray, step: int, length: int, key: int) -> int:
    """An upper bound on how many of an input's keys are below ``key``: sample entry j sits at
    position j * step, so if j entries are below ``key`` the (j+1)-th key at or above it is at
    most j * step in."""
    return min(int(np.searchsorted(sample, sample.dtype.type(key), side="left")) * step, length)


def _bound(
    inputs: Sequence[MergeInput], cursors: list[int], ends: list[int], chunk: int, samples: list[np.ndarray], step: int
) -> int:
    """The largest hash bound K (exclusive) below which, by the key samples' upper bounds, at
    most ``chunk`` postings remain, and at least one hash's postings (so every step progresses).
    ``ends``: each input's number of keys."""

    def below(k: int) -> int:
        if k >= KEY_SPACE:
            return sum(e - c for e, c in zip(ends, cursors, strict=True))
        return sum(max(0, _sampled_end(s, step, e, k) - c) for s, e, c in zip(samples, ends, cursors, strict=True))

    if below(KEY_SPACE) <= chunk:
        return KEY_SPACE
    first = min(int(i.keys.array[c]) for i, c, e in zip(inputs, cursors, ends, strict=True) if c < e)
    lo, hi = first + 1, KEY_SPACE  # below(lo) may exceed chunk (one hash's postings): take it anyway
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if below(mid) <= chunk:
            lo = mid
        else:
            hi = mid - 1
    return lo


def merge(inputs: Sequence[MergeInput], drop: np.ndarray, out: Path, chunk_postings: int) -> MergeResult:
    """Write ``inputs`` without the tracks in ``drop`` as one segment's keys, vals and peaks
    files in the existing directory ``out``; returns the rest of the segment."""
    chunk = max(1, int(chunk_postings))
    drop = np.asarray(drop, dtype=np.int64)
    keeps = [~np.isin(i.tracks, drop) for i in inputs]
    per_track: list[np.ndarray] = []
    max_time = 0
    for inp, keep in zip(inputs, keeps, strict=True):
        if inp.track_postings is None or inp.meta.max_time is None or not keep.all():
            counts, latest = _scan(inp, keep, chunk)
        else:
            counts, latest = inp.track_postings, inp.meta.max_time
        per_track.append(counts[keep])
        max_time = max(max_time, latest)

    tracks = np.concatenate([i.tracks[k] for i, k in zip(inputs, keeps, strict=True)]).astype(np.int64)
    track_postings = np.concatenate(per_track).astype(np.int64) if per_track else np.zeros(0, np.int64)
    postings = int(track_postings.sum())
    out_dtype = vals_dtype(len(tracks), max_time)
    out_bits = time_bits_for(max_time)
    # Old local track → new local track (-1: dropped); input i's tracks follow input i-1's.
    remaps, base = [], 0
    for keep in keeps:
        remap = np.full(len(keep), -1, dtype=np.int64)
        remap[keep] = base + np.arange(int(keep.sum()), dtype=np.int64)
        remaps.append(remap)
        base += int(keep.sum())

    nonempty = [i for i in inputs if len(i.keys.array)]
    max_key = max((int(i.keys.array[-1]) for i in nonempty), default=0)
    dir_bits = directory_bits(max_key, postings)
    # directory[k] = postings with a hash below k, filled chunk by chunk (chunks ascend by hash).
    directory = np.zeros((1 << dir_bits) + 1, dtype=directory_dtype(postings)) if dir_bits is not None else None

    streams = [
        _NpyStream(out / "keys.npy", np.dtype(np.uint32), postings),
        _NpyStream(out / "vals.npy", out_dtype, postings),
    ]
    try:
        samples, step = _key_samples(inputs, chunk)
        cursors = [0] * len(inputs)
        ends = [len(i.keys.array) for i in inputs]
        done, previous = 0, 0
        while any(c < e for c, e in zip(cursors, ends, strict=True)):
            bound = _bound(inputs, cursors, ends, chunk, samples, step)
            key_parts, val_parts = [], []
            for n, inp in enumerate(inputs):
                if bound >= KEY_SPACE:
                    hi = ends[n]
                else:  # searched only in the window the sample bounds: the pages read next anyway
                    top = max(cursors[n], _sampled_end(samples[n], step, ends[n], bound))
                    window = inp.keys.array[cursors[n] : top]
                    hi = cursors[n] + int(np.searchsorted(window, np.uint32(bound), side="left"))
                if hi == cursors[n]:
                    continue
                k = np.asarray(inp.keys.array[cursors[n] : hi])
                v = inp.vals.array[cursors[n] : hi].astype(np.int64)
                cursors[n] = hi
                tb = inp.meta.time_bits
                local = remaps[n][v >> tb]
                live = local >= 0
                if not live.all():
                    k, v, local = k[live], v[live], local[live]
                key_parts.append(k)
                val_parts.append((local << out_bits) | (v & ((1 << tb) - 1)))
                inp.release()
            keys = np.concatenate(key_parts) if key_parts else np.zeros(0, dtype=np.uint32)
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            if key_parts:
                streams[0].append(keys)
                streams[1].append(np.concatenate(val_parts)[order].astype(out_dtype))
            if directory is not None:
                _fill_directory(directory, keys, done, previous, bound, chunk)
            done, previous = done + len(keys), bound
        if directory is not None and previous < KEY_SPACE:  # hashes above the last chunk's
            _fill_directory(directory, np.zeros(0, dtype=np.uint32), done, previous, KEY_SPACE, chunk)
        peak_starts = _copy_peaks(inputs, keeps, out, chunk)
        for s in streams:
            s.close()
    except BaseException:
        for s in streams:
            s.abandon()
        raise

    meta = SegmentMeta.new(postings=postings, tracks=len(tracks), max_time=max_time, directory=directory is not None)
    return MergeResult(meta, tracks, track_postings, peak_starts, directory)


def _fill_directory(directory: np.ndarray, keys: np.ndarray, before: int, lo: int, hi: int, piece: int) -> None:
    """Entries (lo, hi] of ``directory``, for a chunk holding every posting with a hash in
    [lo, hi) (``keys``, sorted), ``before`` postings having been written ahead of it."""
    end = min(hi, len(directory) - 1)
    for start in range(lo + 1, end + 1, piece):
        stop = min(end + 1, start + piece)
        directory[start:stop] = before + np.searchsorted(keys, np.arange(start, stop, dtype=np.uint32))


def _copy_peaks(inputs: Sequence[MergeInput], keeps: Sequence[np.ndarray], out: Path, chunk: int) -> np.ndarray:
    """Append every kept track's packed peaks to ``out``/peaks.npy; returns the peak starts."""
    lengths = [np.diff(i.peak_starts)[k] for i, k in zip(inputs, keeps, strict=True)]
    kept_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(kept_lengths)]).astype(np.int64)
    stream = _NpyStream(out / "peaks.npy", np.dtype(np.uint32), int(starts[-1]))
    try:
        for inp, keep in zip(inputs, keeps, strict=True):
            # Runs of consecutive kept tracks are one contiguous slice of the input's peaks.
            edges = np.flatnonzero(np.diff(np.concatenate([[0], keep.astype(np.int8), [0]])))
            for a, b in zip(edges[::2], edges[1::2], strict=True):
                lo, hi = int(inp.peak_starts[a]), int(inp.peak_starts[b])
                for s in range(lo, hi, chunk):
                    stream.append(inp.peaks.array[s : min(hi, s + chunk)])
                    inp.peaks.release()
        stream.close()
    except BaseException:
        stream.abandon()
        raise
    return starts
