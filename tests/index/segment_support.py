"""Helpers of the segment-index tests: an index over a real catalog, the pre-streaming
compaction (the reference the streaming merge must equal) and a layout-1 segment writer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from soundmark.catalog.sqlite import Catalog
from soundmark.index.base import Hits, TrackPostings
from soundmark.index.manifest import SegmentManifest
from soundmark.index.segment_layout import pack_peaks
from soundmark.index.segments import SEGMENTS_DIR, SegmentIndex


def open_index(root: Path) -> tuple[Catalog, SegmentIndex]:
    root.mkdir(parents=True, exist_ok=True)
    catalog = Catalog(root)
    index = SegmentIndex(root, catalog)
    index.refresh(force=True)
    return catalog, index


def remove(catalog: Catalog, index: SegmentIndex, track_ids: Sequence[int]) -> None:
    with catalog.transaction():
        index.remove(list(track_ids))
    index.refresh(force=True)


def old_compact(catalog: Catalog, index: SegmentIndex) -> None:
    """Compaction as it was before the streaming merge: every live track's postings read into
    memory (``read_postings``), written as new segments, swapped in with the tombstones cleared."""
    index.refresh(force=True)
    manifest = SegmentManifest(catalog.conn)
    names, tombs = manifest.snapshot()
    drop = np.array(tombs, dtype=np.int64)
    merged: list[TrackPostings] = []
    for name in names:
        merged += index.read_postings(name, drop)
    with catalog.transaction():
        manifest.drop(names)
        if merged:
            index.publish(index.write(merged))
        manifest.clear_tombstones(tombs)
    index.refresh(force=True)
    index.cleanup()


def assert_same_hits(a: Hits, b: Hits) -> None:
    """The same postings in the same order."""
    for x, y in ((a.hash_pos, b.hash_pos), (a.track_ids, b.track_ids), (a.times, b.times)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def write_layout1(catalog: Catalog, root: Path, batch: Sequence[TrackPostings]) -> str:
    """A segment as every store before layout 2 has them (meta.json {time_bits, postings}, a
    uint32 value code, no per-track counts nor directory), listed in the manifest."""
    max_time = max((int(p.times.max()) if len(p.times) else 0) for p in batch)
    time_bits = max(1, max_time.bit_length())
    assert len(batch) <= 1 << (32 - time_bits), "layout 1 could not hold this batch in one segment"
    keys = np.concatenate([p.hashes.astype(np.uint32) for p in batch])
    local = np.concatenate([np.full(len(p.hashes), i, dtype=np.uint64) for i, p in enumerate(batch)])
    vals = (local << np.uint64(time_bits)) | np.concatenate([p.times.astype(np.uint64) for p in batch])
    packed = np.sort((keys.astype(np.uint64) << np.uint64(32)) | vals)
    name = f"seg-{uuid.uuid4().hex[:16]}"
    d = root / SEGMENTS_DIR / name
    d.mkdir(parents=True)
    np.save(d / "keys.npy", (packed >> np.uint64(32)).astype(np.uint32))
    np.save(d / "vals.npy", (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    np.save(d / "tracks.npy", np.array([p.track_id for p in batch], dtype=np.int64))
    np.save(d / "peaks.npy", np.concatenate([pack_peaks(np.asarray(p.peaks).reshape(-1, 2)) for p in batch]))
    starts = np.concatenate([[0], np.cumsum([len(p.peaks) for p in batch])]).astype(np.int64)
    np.save(d / "peak_starts.npy", starts)
    (d / "meta.json").write_text(json.dumps({"time_bits": time_bits, "postings": len(keys)}))
    size = sum(f.stat().st_size for f in d.iterdir())
    with catalog.transaction():
        SegmentManifest(catalog.conn).add(name, len(keys), len(batch), size)
    return name


def synthetic_track(
    rng: np.random.Generator, track_id: int, n: int, *, hash_bits: int = 22, max_time: int = 7000
) -> TrackPostings:
    """``n`` postings with a skewed hash distribution (some hashes far more common, as in music)."""
    common = rng.integers(0, 1 << hash_bits, 64)
    hashes = np.where(rng.random(n) < 0.05, common[rng.integers(0, 64, n)], rng.integers(0, 1 << hash_bits, n))
    n_peaks = int(rng.integers(0, 80))
    peaks = np.stack([np.sort(rng.integers(0, max_time + 1, n_peaks)), rng.integers(0, 1024, n_peaks)], axis=1)
    return TrackPostings(
        track_id,
        hashes.astype(np.uint32),
        rng.integers(0, max_time + 1, n).astype(np.int32),
        peaks.astype(np.int32).reshape(-1, 2),
    )
