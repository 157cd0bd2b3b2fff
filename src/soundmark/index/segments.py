"""Immutable sorted-array segments, memory-mapped: the embedded index backend.

Why hand-written: a sorted uint32 key array searched with ``np.searchsorted`` is the fastest
lookup measured on this hardware (INDEX-ENGINES.md: 0.7 ms per 1,500 hashes against 2.5 ms for
LMDB) and, at 8 bytes a posting, about a quarter of LMDB's size. No library offers that layout.

A segment is a directory written once and renamed into place:
  keys.npy    uint32, sorted hashes
  vals.npy    uint32, (local track << time_bits) | time frame
  tracks.npy  int64, local track → global track id
  peaks.npy   uint32, (frame << PEAK_BIN_BITS) | bin, per track in time order (for verification)
  peak_starts.npy  int64, where each local track's peaks start (n_tracks + 1 entries)
  meta.json   {"time_bits": n, "postings": n}
The peak code is this backend's own: callers see peaks as int32 (frame, bin) pairs only.

Which segments are live, and which tracks are removed, is this backend's manifest
(``index/manifest.py``) in the catalog file. ``write`` fsyncs a segment before any transaction;
``publish`` lists it inside the store's short transaction that inserts its tracks; so a crash
leaves either a whole listed segment with its tracks or an unlisted directory that the next
writer's ``cleanup`` deletes.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmark.errors import StoreError
from soundmark.index.base import Hits, IndexDatabase, IndexStats, TrackPostings, Written, WrittenPart
from soundmark.index.manifest import SegmentManifest

SEGMENTS_DIR = "segments"


@dataclass
class _Segment:
    name: str
    keys: np.ndarray
    vals: np.ndarray
    tracks: np.ndarray
    peaks: np.ndarray
    peak_starts: np.ndarray
    time_bits: int
    bytes: int
    directory: np.ndarray | None = None  # start of every hash value's run, when the hash space is small


# Hash spaces up to this many bits get an in-memory directory (4 bytes per possible hash) that
# turns each lookup into two array reads instead of two binary searches.
DIRECTORY_MAX_BITS = 23


def _directory(keys: np.ndarray) -> np.ndarray | None:
    if len(keys) == 0 or len(keys) >= 2**31:
        return None
    bits = int(keys[-1]).bit_length()
    if bits > DIRECTORY_MAX_BITS:
        return None
    counts = np.bincount(np.asarray(keys), minlength=(1 << bits))
    out = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=out[1:])
    return out


def max_tracks_for(max_time: int) -> int:
    """How many tracks fit one segment when the longest reaches ``max_time`` frames."""
    time_bits = max(1, int(max_time).bit_length())
    return 1 << (32 - time_bits) if time_bits < 32 else 0


PEAK_BIN_BITS = 10  # a stored peak's bin is below BIN_SPAN; frame * BIN_SPAN + bin codes a peak
BIN_SPAN = 1 << PEAK_BIN_BITS
MAX_PEAK_FRAME = (1 << (32 - PEAK_BIN_BITS)) - 1  # the largest frame a packed peak holds


def pack_peaks(peaks: np.ndarray) -> np.ndarray:
    packed = (peaks[:, 0].astype(np.uint32) << np.uint32(PEAK_BIN_BITS)) | peaks[:, 1].astype(np.uint32)
    return packed.astype(np.uint32)


def unpack_peaks(packed: np.ndarray) -> np.ndarray:
    p = packed.astype(np.int64)
    return np.stack([p >> PEAK_BIN_BITS, p & (BIN_SPAN - 1)], axis=1).astype(np.int32)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as .npy durably. The data goes through ``write`` rather than numpy's
    ``tofile``, whose short write on a full disk raises an OSError without its errno."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(array))
        fh.write(array.reshape(-1).view(np.uint8).data)
        fh.flush()
        os.fsync(fh.fileno())


class _Superseded(Exception):
    """The manifest changed under a compaction (another writer compacted first)."""


class SegmentIndex:
    """The segment backend of one store directory: both index ports (``IndexBackend``)."""

    def __init__(self, root: Path, db: IndexDatabase):
        self.root = Path(root) / SEGMENTS_DIR
        self._db = db
        self._manifest = SegmentManifest(db.conn)
        self._segments: dict[str, _Segment] = {}
        self._removed = np.zeros(0, dtype=np.int64)
        self._where: dict[int, tuple[_Segment, int]] = {}
        self._version = -1

    # --- reading ------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Load segments and tombstones committed since the last call.

        ``PRAGMA data_version`` only changes for commits of *other* connections, so a writer
        reloads with ``force=True`` after its own commits.
        """
        for attempt in range(5):
            version = self._manifest.version()
            if version == self._version and not force:
                return
            try:
                self.load(*self._manifest.snapshot())
            except StoreError:
                # A compaction committed meanwhile and deleted segments we were about to open:
                # read the manifest again (unless nothing changed: then the store is damaged).
                if attempt == 4 or self._manifest.version() == version:
                    raise
                force = True
                continue
            self._version = version
            return

    def load(self, names: Iterable[str], removed_tracks: Iterable[int]) -> None:
        """Make exactly ``names`` the live segments; open new ones, drop the others."""
        wanted = list(names)
        fresh: dict[str, _Segment] = {}
        for name in wanted:
            fresh[name] = self._segments.get(name) or self._open(name)
        self._segments = fresh
        removed = set(removed_tracks)
        # A tombstoned track's peaks are hidden at once, like its postings (compaction drops the bytes).
        self._where = {
            int(tid): (seg, i)
            for seg in fresh.values()
            for i, tid in enumerate(seg.tracks.tolist())
            if int(tid) not in removed
        }
        self._removed = np.array(sorted(removed), dtype=np.int64)

    def _open(self, name: str) -> _Segment:
        d = self.root / name
        try:
            meta = json.loads((d / "meta.json").read_text())
            keys = np.load(d / "keys.npy", mmap_mode="r")
            vals = np.load(d / "vals.npy", mmap_mode="r")
            tracks = np.load(d / "tracks.npy")
            peaks = np.load(d / "peaks.npy", mmap_mode="r")
            peak_starts = np.load(d / "peak_starts.npy")
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"segment {name} is unreadable: {exc}") from exc
        size = sum(f.stat().st_size for f in d.iterdir())
        return _Segment(name, keys, vals, tracks, peaks, peak_starts, int(meta["time_bits"]), size)

    @property
    def names(self) -> list[str]:
        """The live segments loaded now (this backend's own view; not part of the ports)."""
        return list(self._segments)

    def postings(self) -> int:
        return sum(len(s.keys) for s in self._segments.values())

    def stats(self) -> IndexStats:
        segs = self._segments.values()
        return IndexStats(sum(len(s.keys) for s in segs), len(self._segments), sum(s.bytes for s in segs))

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int) -> Hits:
        """Postings of ``hashes`` (unique uint32) across all live segments."""
        q = np.asarray(hashes, dtype=np.uint32)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        segs = list(self._segments.values())
        ranges = []
        total_counts = np.zeros(len(q), dtype=np.int64)
        for seg in segs:
            if seg.directory is None and len(seg.keys):
                seg.directory = _directory(seg.keys)
            if seg.directory is not None:
                d = seg.directory
                inside = np.minimum(q, len(d) - 2).astype(np.int64)
                lo = np.where(q < len(d) - 1, d[inside], 0).astype(np.int64)
                hi = np.where(q < len(d) - 1, d[inside + 1], 0).astype(np.int64)
            else:
                lo = np.searchsorted(seg.keys, q, side="left")
                hi = np.searchsorted(seg.keys, q, side="right")
            ranges.append((lo, hi))
            total_counts += hi - lo
        allowed = total_counts <= max_postings_per_hash
        for seg, (lo, hi) in zip(segs, ranges, strict=True):
            counts = np.where(allowed, hi - lo, 0)
            n = int(counts.sum())
            if n == 0:
                continue
            pos = np.repeat(np.arange(len(q), dtype=np.int64), counts)
            starts = np.repeat(lo.astype(np.int64) - np.cumsum(counts) + counts, counts)
            idx = starts + np.arange(n, dtype=np.int64)
            vals = np.asarray(seg.vals[idx], dtype=np.int64)
            mask = (1 << seg.time_bits) - 1
            track_ids = seg.tracks[vals >> seg.time_bits]
            parts.append((pos, track_ids, vals & mask))
        if not parts:
            return Hits.empty()
        pos, tids, times = (np.concatenate(x) for x in zip(*parts, strict=True))
        if len(self._removed):
            live = ~np.isin(tids, self._removed)
            pos, tids, times = pos[live], tids[live], times[live]
        return Hits(pos, tids, times)

    def track_peaks(self, track_id: int) -> np.ndarray:
        """Stored peaks (int32 (n, 2): frame, bin) of a live track; empty if unknown."""
        found = self._where.get(int(track_id))
        if found is None:
            return np.zeros((0, 2), dtype=np.int32)
        seg, i = found
        packed = np.asarray(seg.peaks[seg.peak_starts[i] : seg.peak_starts[i + 1]])
        return unpack_peaks(packed)

    # --- writing ------------------------------------------------------------------------------
    def write(self, batch: Sequence[TrackPostings]) -> Written:
        """Write ``batch`` durably as one or more segments (split, in order, where its times leave
        too few bits for its tracks); not live until ``publish`` commits. Outside any transaction."""
        _check(batch)
        parts: list[WrittenPart] = []
        start = 0
        try:
            while start < len(batch):
                max_time = max(int(p.times.max()) if len(p.times) else 0 for p in batch[start:])
                step = max_tracks_for(max_time)
                parts.append(self._write_segment(batch[start : start + step]))
                start += step
        except BaseException:
            for part in parts:
                shutil.rmtree(self.root / part.name, ignore_errors=True)
            raise
        return Written(tuple(int(p.track_id) for p in batch), tuple(parts))

    def _write_segment(self, batch: Sequence[TrackPostings]) -> WrittenPart:
        max_time = max((int(p.times.max()) if len(p.times) else 0) for p in batch)
        time_bits = max(1, max_time.bit_length())
        keys = np.concatenate([p.hashes.astype(np.uint32) for p in batch])
        local = np.concatenate([np.full(len(p.hashes), i, dtype=np.uint64) for i, p in enumerate(batch)])
        times = np.concatenate([p.times.astype(np.uint64) for p in batch])
        vals = (local << np.uint64(time_bits)) | times
        # One sort of (key << 32 | val) orders by key, then track, then time.
        packed = np.sort((keys.astype(np.uint64) << np.uint64(32)) | vals)
        keys = (packed >> np.uint64(32)).astype(np.uint32)
        vals32 = (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        tracks = np.array([p.track_id for p in batch], dtype=np.int64)
        peaks = np.concatenate([pack_peaks(np.asarray(p.peaks).reshape(-1, 2)) for p in batch])
        peak_starts = np.concatenate([[0], np.cumsum([len(p.peaks) for p in batch])]).astype(np.int64)

        name = f"seg-{uuid.uuid4().hex[:16]}"
        tmp = self.root / f".tmp-{name}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            _save(tmp / "keys.npy", keys)
            _save(tmp / "vals.npy", vals32)
            _save(tmp / "tracks.npy", tracks)
            _save(tmp / "peaks.npy", peaks)
            _save(tmp / "peak_starts.npy", peak_starts)
            (tmp / "meta.json").write_text(json.dumps({"time_bits": time_bits, "postings": len(keys)}))
            _fsync_dir(tmp)
            os.rename(tmp, self.root / name)
            _fsync_dir(self.root)
            size = sum(f.stat().st_size for f in (self.root / name).iterdir())
        except OSError as exc:
            # A full disk (ENOSPC), a file-size limit (EFBIG), a failing device: leave no partial
            # segment behind and say so in words (the manifest never listed it).
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.root / name, ignore_errors=True)
            reason = exc.strerror or str(exc)
            raise StoreError(f"could not write an index segment under {self.root}: {reason}") from exc
        return WrittenPart(name, len(batch), len(keys), size)

    def publish(self, written: Written) -> None:
        """List ``written``'s segments, inside the store's open transaction."""
        for part in written.parts:
            self._manifest.add(part.name, part.postings, part.tracks, part.bytes)

    def remove(self, track_ids: Iterable[int]) -> None:
        """Tombstone ``track_ids``, inside the store's open transaction."""
        self._manifest.add_tombstones(track_ids)

    def abort(self, written: Written | None) -> None:
        """Delete ``written``'s segments (the rolled-back transaction took the manifest rows)."""
        for part in written.parts if written is not None else ():
            shutil.rmtree(self.root / part.name, ignore_errors=True)

    def add(self, batch: Sequence[TrackPostings]) -> Written:
        written = self.write(batch)
        try:
            with self._db.transaction():
                self.publish(written)
        except BaseException:
            self.abort(written)
            raise
        self.refresh(force=True)
        return written

    def compact(self, max_segments: int = 1) -> int:
        """Merge segments (dropping removed tracks) until at most ``max_segments`` remain.

        The merged segments are written and fsynced first; one short transaction then swaps
        them for the old ones and clears the tombstones it applied. Readers holding the old
        segments keep them (the files stay mapped after unlink) and switch at their next refresh.
        """
        self.refresh(force=True)
        names, tombs = self._manifest.snapshot()
        if len(names) <= max_segments and not tombs:
            return 0
        drop = np.array(tombs, dtype=np.int64)
        merged: list[TrackPostings] = []
        for name in names:
            merged += self.read_postings(name, drop)
        written = self.write(merged) if merged else Written((), ())
        try:
            with self._db.transaction():
                if not set(names) <= set(self._manifest.names()):
                    raise _Superseded
                self._manifest.drop(names)
                self.publish(written)
                self._manifest.clear_tombstones(tombs)
        except _Superseded:
            self.abort(written)
            return 0
        except BaseException:
            self.abort(written)
            raise
        self.refresh(force=True)
        self.cleanup()
        return len(names)

    def cleanup(self) -> int:
        """Delete segment directories the manifest does not list (a dead writer's leftovers)."""
        return self.delete_unlisted(self._manifest.names())

    def read_postings(self, name: str, drop_tracks: np.ndarray) -> list[TrackPostings]:
        """Every track's postings of one segment (for compaction), without ``drop_tracks``."""
        seg = self._segments.get(name) or self._open(name)
        vals = np.asarray(seg.vals, dtype=np.int64)
        keys = np.asarray(seg.keys)
        local = vals >> seg.time_bits
        times = vals & ((1 << seg.time_bits) - 1)
        order = np.argsort(local, kind="stable")
        bounds = np.searchsorted(local[order], np.arange(len(seg.tracks) + 1))
        out = []
        for i, tid in enumerate(seg.tracks):
            if tid in drop_tracks:
                continue
            sel = order[bounds[i] : bounds[i + 1]]
            peaks = unpack_peaks(np.asarray(seg.peaks[seg.peak_starts[i] : seg.peak_starts[i + 1]]))
            out.append(TrackPostings(int(tid), keys[sel], times[sel].astype(np.int32), peaks))
        return out

    def delete_unlisted(self, live: Iterable[str]) -> int:
        """Remove segment directories that no committed manifest row names (crash leftovers)."""
        if not self.root.exists():
            return 0
        keep = set(live)
        removed = 0
        for d in self.root.iterdir():
            if d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed


def _check(batch: Sequence[TrackPostings]) -> None:
    """Refuse a batch this layout cannot hold, before anything is written."""
    if not batch:
        raise ValueError("empty segment")
    ids = [int(p.track_id) for p in batch]
    if len(set(ids)) != len(ids):
        raise ValueError("a track id appears twice in one batch")
    for p in batch:
        if len(p.hashes) != len(p.times):
            raise ValueError(f"track {p.track_id}: {len(p.hashes)} hashes but {len(p.times)} times")
        if len(p.times) and (int(p.times.min()) < 0 or int(p.times.max()) >= 2**31):
            raise ValueError(f"track {p.track_id}: times must lie in [0, 2**31) frames")
        peaks = np.asarray(p.peaks).reshape(-1, 2)
        if len(peaks) and not (
            0 <= int(peaks[:, 0].min()) <= int(peaks[:, 0].max()) <= MAX_PEAK_FRAME
            and 0 <= int(peaks[:, 1].min()) <= int(peaks[:, 1].max()) < BIN_SPAN
        ):
            raise ValueError(f"track {p.track_id}: peaks need frames ≤ {MAX_PEAK_FRAME} and bins < {BIN_SPAN}")
