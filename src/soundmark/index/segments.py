"""Immutable sorted-array segments, memory-mapped: the embedded index backend.

Why hand-written: a sorted uint32 key array searched with ``np.searchsorted`` is the fastest
lookup measured on this hardware (INDEX-ENGINES.md: 0.7 ms per 1,500 hashes against 2.5 ms for
LMDB) and, at 8 bytes a posting, about a quarter of LMDB's size. No library offers that layout.

A segment is a directory written once and renamed into place; its files, meta.json and the
posting value code (4 bytes when a segment's tracks and times fit 32 bits, else 8) are
``index/segment_layout.py``'s. Large segments carry their hash directory on disk, memory-mapped,
so worker processes share it; segments of the first layout (no layout version in meta.json) are
read as they are and rewritten in the current layout by compaction.
The peak code is this backend's own: callers see peaks as int32 (frame, bin) pairs only.

Which segments are live, and which tracks are removed, is this backend's manifest
(``index/manifest.py``) in the catalog file. ``write`` fsyncs a segment before any transaction;
``publish`` lists it inside the store's short transaction that inserts its tracks; so a crash
leaves either a whole listed segment with its tracks or an unlisted directory that the next
writer's ``cleanup`` deletes.

Compaction merges segments by streaming (``index/merge.py``: memory bounded by a chunk of
postings, not by the catalog) and is driven by the tiered policy of ``index/policy.py`` after
adds (``merge_by_policy``) or asked for whole (``compact(1)``). Either way the merged segment is
written and fsynced first, then one short transaction swaps it for its inputs and clears the
tombstones it applied.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmark.errors import StoreError
from soundmark.index.base import (
    Hits,
    IndexDatabase,
    IndexStats,
    TrackPostings,
    Written,
    WrittenPart,
    add_in_own_transaction,
    budget_dropped,
    check_batch,
    within_budget,
)
from soundmark.index.manifest import SegmentManifest
from soundmark.index.merge import MERGE_CHUNK_POSTINGS, MergeInput, merge
from soundmark.index.policy import SegmentSize, next_merge
from soundmark.index.segment_layout import (
    BIN_SPAN,
    DIRECTORY_MIN_POSTINGS,
    MAX_PEAK_FRAME,
    SegmentMeta,
    directory_bits,
    directory_dtype,
    max_tracks_for,
    pack_peaks,
    unpack_peaks,
)

__all__ = ["SEGMENTS_DIR", "SegmentIndex", "max_tracks_for", "pack_peaks", "unpack_peaks"]

SEGMENTS_DIR = "segments"


SAMPLE_STEP = 64  # keys per block of a segment's key sample (256 bytes of uint32 keys)


@dataclass
class _Segment:
    name: str
    keys: np.ndarray
    vals: np.ndarray
    tracks: np.ndarray
    peaks: np.ndarray
    peak_starts: np.ndarray
    meta: SegmentMeta
    bytes: int
    directory: np.ndarray | None = None  # start of every hash value's run (large segments only)
    track_postings: np.ndarray | None = None  # postings per local track (layout 1: counted on demand)
    # Every SAMPLE_STEP-th key where no directory is (segment_kernels.key_ranges), taken at the
    # segment's first lookup: opening a store (compaction, a writer) reads no keys.
    sample: np.ndarray | None = None

    @property
    def time_bits(self) -> int:
        return self.meta.time_bits


def _directory(keys: np.ndarray) -> np.ndarray | None:
    """The hash directory of a layout-1 segment large enough for one (built in memory once)."""
    if len(keys) == 0:
        return None
    bits = directory_bits(int(keys[-1]), len(keys))
    if bits is None:
        return None
    counts = np.bincount(np.asarray(keys), minlength=(1 << bits))
    out = np.zeros(len(counts) + 1, dtype=directory_dtype(len(keys)))
    np.cumsum(counts, out=out[1:])
    return out


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


def _count_postings(seg: _Segment, chunk: int) -> np.ndarray:
    """Postings per local track of a segment that does not record them (layout 1), in chunks."""
    counts = np.zeros(len(seg.tracks), dtype=np.int64)
    for start in range(0, len(seg.vals), chunk):
        local = np.asarray(seg.vals[start : start + chunk], dtype=np.int64) >> seg.time_bits
        counts += np.bincount(local, minlength=len(seg.tracks))
    return counts


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
        self.merge_chunk_postings = MERGE_CHUNK_POSTINGS  # compaction's memory bound (index/merge.py)

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
            meta = SegmentMeta.read(d / "meta.json")
            keys = np.load(d / "keys.npy", mmap_mode="r")
            vals = np.load(d / "vals.npy", mmap_mode="r")
            tracks = np.load(d / "tracks.npy")
            peaks = np.load(d / "peaks.npy", mmap_mode="r")
            peak_starts = np.load(d / "peak_starts.npy")
            directory = np.load(d / "directory.npy", mmap_mode="r") if meta.directory else None
            counts = np.load(d / "track_postings.npy") if meta.layout >= 2 else None
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"segment {name} is unreadable: {exc}") from exc
        if meta.layout == 1 and len(keys) >= DIRECTORY_MIN_POSTINGS:
            directory = _directory(keys)  # layout 1 stored none: build it once, in memory
        size = sum(f.stat().st_size for f in d.iterdir())
        return _Segment(name, keys, vals, tracks, peaks, peak_starts, meta, size, directory, counts)

    @property
    def names(self) -> list[str]:
        """The live segments loaded now (this backend's own view; not part of the ports)."""
        return list(self._segments)

    def postings(self) -> int:
        return sum(len(s.keys) for s in self._segments.values())

    def stats(self) -> IndexStats:
        segs = self._segments.values()
        return IndexStats(sum(len(s.keys) for s in segs), len(self._segments), sum(s.bytes for s in segs))

    def lookup(self, hashes: np.ndarray, max_postings_per_hash: int, budget: int | None = None) -> Hits:
        """Postings of ``hashes`` (unique uint32) across all live segments (cap and budget:
        ``within_budget`` over the hashes' postings in all segments)."""
        # Imported on first use: numba and LLVM load only in processes that look up.
        from soundmark.index.segment_kernels import gather, key_ranges

        q = np.asarray(hashes, dtype=np.uint32)
        segs = list(self._segments.values())
        ranges = []
        total_counts = np.zeros(len(q), dtype=np.int64)
        for seg in segs:
            if seg.directory is not None:
                d = seg.directory
                inside = np.minimum(q, len(d) - 2).astype(np.int64)
                lo = np.where(q < len(d) - 1, d[inside], 0).astype(np.int64)
                hi = np.where(q < len(d) - 1, d[inside + 1], 0).astype(np.int64)
            else:
                if seg.sample is None:  # (two threads may both take it: the same array)
                    seg.sample = np.ascontiguousarray(seg.keys[::SAMPLE_STEP])
                lo, hi = key_ranges(np.asarray(seg.keys), seg.sample, SAMPLE_STEP, q)
            ranges.append((lo, hi))
            total_counts += hi - lo
        allowed = within_budget(total_counts, max_postings_per_hash, budget)
        dropped = budget_dropped(total_counts, max_postings_per_hash, allowed)
        n = int(total_counts[allowed].sum())
        if n == 0:
            return Hits.empty(dropped)
        pos, tids, times = (np.empty(n, dtype=np.int64) for _ in range(3))
        at = 0
        for seg, (lo, hi) in zip(segs, ranges, strict=True):
            vals = np.asarray(seg.vals)  # the mapped array itself (no copy)
            at = gather(vals, seg.tracks, seg.time_bits, lo, hi, allowed, pos, tids, times, at)
        if len(self._removed):
            live = ~np.isin(tids, self._removed)
            pos, tids, times = pos[live], tids[live], times[live]
        return Hits(pos, tids, times, dropped)

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
        """Write ``batch`` durably as one segment; not live until ``publish`` commits. Outside
        any transaction."""
        check_batch(batch, MAX_PEAK_FRAME, BIN_SPAN)
        part = self._write_segment(batch)
        return Written(tuple(int(p.track_id) for p in batch), (part,))

    def _write_segment(self, batch: Sequence[TrackPostings]) -> WrittenPart:
        max_time = max((int(p.times.max()) if len(p.times) else 0) for p in batch)
        keys = np.concatenate([p.hashes.astype(np.uint32) for p in batch])
        meta = SegmentMeta.new(postings=len(keys), tracks=len(batch), max_time=max_time, directory=False)
        local = np.concatenate([np.full(len(p.hashes), i, dtype=np.uint64) for i, p in enumerate(batch)])
        times = np.concatenate([p.times.astype(np.uint64) for p in batch])
        vals = (local << np.uint64(meta.time_bits)) | times
        if meta.vals == "u32":
            # One sort of (key << 32 | val) orders by key, then track, then time.
            packed = np.sort((keys.astype(np.uint64) << np.uint64(32)) | vals)
            keys = (packed >> np.uint64(32)).astype(np.uint32)
            vals = packed & np.uint64(0xFFFFFFFF)
        else:
            order = np.lexsort((vals, keys))
            keys, vals = keys[order], vals[order]
        bits = directory_bits(int(keys[-1]) if len(keys) else 0, len(keys))
        directory = None
        if bits is not None:
            directory = np.zeros((1 << bits) + 1, dtype=directory_dtype(len(keys)))
            np.cumsum(np.bincount(keys, minlength=1 << bits), out=directory[1:])
            meta = SegmentMeta.new(postings=len(keys), tracks=len(batch), max_time=max_time, directory=True)
        tracks = np.array([p.track_id for p in batch], dtype=np.int64)
        peaks = np.concatenate([pack_peaks(np.asarray(p.peaks).reshape(-1, 2)) for p in batch])
        peak_starts = np.concatenate([[0], np.cumsum([len(p.peaks) for p in batch])]).astype(np.int64)
        counts = np.array([len(p.hashes) for p in batch], dtype=np.int64)

        def fill(tmp: Path) -> SegmentMeta:
            _save(tmp / "keys.npy", keys)
            _save(tmp / "vals.npy", vals.astype(meta.vals_dtype))
            _save(tmp / "tracks.npy", tracks)
            _save(tmp / "peaks.npy", peaks)
            _save(tmp / "peak_starts.npy", peak_starts)
            _save(tmp / "track_postings.npy", counts)
            if directory is not None:
                _save(tmp / "directory.npy", directory)
            return meta

        return self._materialize(fill)

    def _materialize(self, fill: Callable[[Path], SegmentMeta]) -> WrittenPart:
        """Make a new segment directory durable: ``fill`` writes its arrays into a temporary
        directory, then its meta.json is written, the directory fsynced and renamed into place."""
        name = f"seg-{uuid.uuid4().hex[:16]}"
        tmp = self.root / f".tmp-{name}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            meta = fill(tmp)
            with open(tmp / "meta.json", "w") as fh:
                fh.write(meta.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            _fsync_dir(tmp)
            os.rename(tmp, self.root / name)
            _fsync_dir(self.root)
            size = sum(f.stat().st_size for f in (self.root / name).iterdir())
        except BaseException as exc:
            # A full disk (ENOSPC), a file-size limit (EFBIG), a failing device: leave no partial
            # segment behind and say so in words (the manifest never listed it).
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(self.root / name, ignore_errors=True)
            if isinstance(exc, OSError):
                reason = exc.strerror or str(exc)
                raise StoreError(f"could not write an index segment under {self.root}: {reason}") from exc
            raise
        return WrittenPart(name, meta.tracks or 0, meta.postings, size)

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
        return add_in_own_transaction(self, self._db, batch)

    def compact(self, max_segments: int = 1) -> int:
        """Merge every segment into one (dropping removed tracks) when more than
        ``max_segments`` remain or tracks were removed; returns how many were merged.

        The merged segment is written and fsynced first; one short transaction then swaps it
        for the old ones and clears the tombstones it applied. Readers holding the old
        segments keep them (the files stay mapped after unlink) and switch at their next refresh.
        """
        self.refresh(force=True)
        names, tombs = self._manifest.snapshot()
        if len(names) <= max_segments and not tombs:
            return 0
        return self._merge(names)

    def merge_by_policy(self) -> int:
        """Merge what the tiered policy (``index/policy.py``) asks for, until it asks for
        nothing; returns how many segments were merged (the ingest calls this after adds)."""
        merged = 0
        # Each merge replaces TIER_FACTOR segments by one, so the loop ends within as many rounds
        # as there are segments: a backlog (adds committed without merging, a writer that died
        # between its commit and its merges) is worked off whole, not 64 merges at a time.
        for _ in range(len(self._segments) + 1):
            self.refresh(force=True)
            group = next_merge(self.sizes())
            if not group:
                break
            done = self._merge(group)
            if done == 0:
                break  # another writer changed the manifest meanwhile
            merged += done
        return merged

    def sizes(self) -> list[SegmentSize]:
        """The live segments as the merge policy sees them, oldest first."""
        removed = self._removed
        out = []
        for seg in self._segments.values():
            dead = 0
            if len(removed):
                gone = np.isin(seg.tracks, removed)
                if gone.any():
                    if seg.track_postings is None:
                        seg.track_postings = _count_postings(seg, self.merge_chunk_postings)
                    dead = int(seg.track_postings[gone].sum())
            out.append(SegmentSize(seg.name, len(seg.keys), dead))
        return out

    def write_merged(self, names: Sequence[str], drop: np.ndarray) -> Written:
        """Stream ``names`` (dropping the tracks in ``drop``) into one new, durable, unlisted
        segment; nothing at all when no track is left."""
        inputs: list[MergeInput] = []
        for name in names:
            try:
                inputs.append(MergeInput.open(self.root / name))
            except (OSError, ValueError, KeyError) as exc:
                raise StoreError(f"segment {name} is unreadable: {exc}") from exc
        if not any(len(i.tracks[~np.isin(i.tracks, drop)]) for i in inputs):
            return Written((), ())

        def fill(tmp: Path) -> SegmentMeta:
            result = merge(inputs, drop, tmp, self.merge_chunk_postings)
            _save(tmp / "tracks.npy", result.tracks)
            _save(tmp / "peak_starts.npy", result.peak_starts)
            _save(tmp / "track_postings.npy", result.track_postings)
            if result.directory is not None:
                _save(tmp / "directory.npy", result.directory)
            return result.meta

        part = self._materialize(fill)
        ids = np.concatenate([i.tracks for i in inputs])
        return Written(tuple(int(t) for t in ids[~np.isin(ids, drop)]), (part,))

    def _merge(self, names: Sequence[str]) -> int:
        """Replace ``names`` by their merge in one short transaction; 0 when superseded."""
        listed, tombs = self._manifest.snapshot()
        if not set(names) <= set(listed):
            return 0
        drop = np.array(tombs, dtype=np.int64)
        written = self.write_merged(names, drop)
        # A tombstone is applied once no remaining segment holds its track (ids are never reused).
        kept = set(names)
        others = [self._segments.get(n) or self._open(n) for n in listed if n not in kept]
        still = np.concatenate([s.tracks for s in others]) if others else np.zeros(0, dtype=np.int64)
        applied = [int(t) for t in drop[~np.isin(drop, still)]]
        try:
            with self._db.transaction():
                if not set(names) <= set(self._manifest.names()):
                    raise _Superseded
                self._manifest.drop(names)
                self.publish(written)
                self._manifest.clear_tombstones(applied)
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

    def read_tracks(self, track_ids: Iterable[int], max_postings: int) -> Iterator[TrackPostings]:
        """The postings and peaks of the live tracks among ``track_ids`` (``TrackPostingsReader``),
        segment by segment, a window of tracks at a time: a window holds tracks whose postings add
        up to at most ``max_postings`` (at least one track), and is read in one pass over its
        segment's values, ``max_postings`` at a time. So memory stays near 24 bytes ×
        ``max_postings`` whatever the segment's size, at the price of one pass over a segment per
        window (``soundmark migrate`` reads a store once). A track's postings come in hash order."""
        wanted: dict[str, list[int]] = {}
        for tid in track_ids:
            found = self._where.get(int(tid))
            if found is not None:
                wanted.setdefault(found[0].name, []).append(found[1])
        chunk = max(1, int(max_postings))
        for name, locals_ in wanted.items():
            seg = self._segments[name]
            if seg.track_postings is None:
                seg.track_postings = _count_postings(seg, chunk)
            counts = seg.track_postings
            window: list[int] = []
            size = 0
            for local in sorted(set(locals_)):
                if window and size + int(counts[local]) > chunk:
                    yield from self._read_window(seg, window, chunk)
                    window, size = [], 0
                window.append(local)
                size += int(counts[local])
            if window:
                yield from self._read_window(seg, window, chunk)

    def _read_window(self, seg: _Segment, window: Sequence[int], chunk: int) -> Iterator[TrackPostings]:
        """The tracks ``window`` (local numbers, ascending) of ``seg``, read in one chunked pass."""
        member = np.zeros(len(seg.tracks), dtype=bool)
        member[np.asarray(window, dtype=np.int64)] = True
        mask = (1 << seg.time_bits) - 1
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for start in range(0, len(seg.vals), chunk):
            vals = np.asarray(seg.vals[start : start + chunk], dtype=np.int64)
            local = vals >> seg.time_bits
            sel = member[local]
            if sel.any():
                keys = np.asarray(seg.keys[start : start + chunk])
                parts.append((local[sel], keys[sel], (vals[sel] & mask).astype(np.int32)))
        if parts:
            local, keys, times = (np.concatenate(x) for x in zip(*parts, strict=True))
        else:
            local, keys, times = np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.int32)
        order = np.argsort(local, kind="stable")  # per track, keeping the segment's hash order
        local, keys, times = local[order], keys[order], times[order]
        bounds = np.searchsorted(local, np.asarray([*window, window[-1] + 1], dtype=np.int64))
        for j, i in enumerate(window):
            peaks = unpack_peaks(np.asarray(seg.peaks[seg.peak_starts[i] : seg.peak_starts[i + 1]]))
            lo, hi = int(bounds[j]), int(bounds[j + 1])
            yield TrackPostings(int(seg.tracks[i]), keys[lo:hi].astype(np.uint32), times[lo:hi], peaks)

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
