"""The streaming merge (index/merge.py) against the in-memory compaction it replaces, the
layout that scales (index/segment_layout.py), and layout-1 segments of older stores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from contract import BIG_CAP, expected, got, track
from segment_support import (
    assert_same_hits,
    old_compact,
    open_index,
    remove,
    synthetic_track,
    write_layout1,
)

from soundmark.index.base import TrackPostings
from soundmark.index.segment_layout import (
    DIRECTORY_MIN_POSTINGS,
    LAYOUT_VERSION,
    SegmentMeta,
    directory_dtype,
    max_tracks_for,
)
from soundmark.index.segments import SEGMENTS_DIR, SegmentIndex


def meta_of(index: SegmentIndex, name: str) -> SegmentMeta:
    return SegmentMeta.read(index.root / name / "meta.json")


def random_batches(
    rng: np.random.Generator, sizes: list[int], *, long_track: bool = False
) -> list[list[TrackPostings]]:
    out, tid = [], 1
    for n in sizes:
        batch = []
        for _ in range(n):
            batch.append(synthetic_track(rng, tid, int(rng.integers(0, 600)), hash_bits=12))
            tid += 1
        out.append(batch)
    if long_track:  # 6 h at 31.25 frames/s: 20 time bits
        out[0][0] = synthetic_track(rng, out[0][0].track_id, 3000, hash_bits=12, max_time=675_000)
    # A hot hash in every track: its postings exceed the small chunks used below.
    return [[TrackPostings(p.track_id, np.append(p.hashes, 7), np.append(p.times, 3), p.peaks) for p in b] for b in out]


@pytest.mark.parametrize("chunk", [5, 97, 1 << 21])
@pytest.mark.parametrize("long_track", [False, True])
def test_streaming_merge_equals_the_in_memory_compaction(tmp_path: Path, chunk: int, long_track: bool) -> None:
    rng = np.random.default_rng(chunk + long_track)
    batches = random_batches(rng, [7, 1, 12, 3, 5], long_track=long_track)
    tracks = {p.track_id: p for b in batches for p in b}
    victims = [2, 9, 10, 20, 28]
    indexes = []
    for side in ("old", "new"):
        catalog, index = open_index(tmp_path / side)
        for b in batches:
            index.add(b)
        remove(catalog, index, victims)
        indexes.append((catalog, index))
    (old_cat, old), (new_cat, new) = indexes
    old_compact(old_cat, old)
    new.merge_chunk_postings = chunk
    assert new.compact(1) == len(batches)
    assert len(new.names) == len(old.names) == 1
    assert new.postings() == old.postings() == sum(len(p.hashes) for t, p in tracks.items() if t not in victims)
    (name,) = new.names
    assert meta_of(new, name).vals == "u32"  # 28 tracks fit the 4-byte code, even beside a 6 h track
    for q in (np.arange(1 << 12, dtype=np.uint32), rng.permutation(1 << 12)[:700].astype(np.uint32)):
        for cap in (3, 40, BIG_CAP):
            assert_same_hits(new.lookup(q, cap), old.lookup(q, cap))
        assert got(new.lookup(q, BIG_CAP), q) == expected(tracks, q, removed=victims)
    for tid in [*tracks, 999]:
        np.testing.assert_array_equal(new.track_peaks(tid), old.track_peaks(tid))
    assert new_cat.conn.execute("SELECT COUNT(*) FROM tombstones").fetchone()[0] == 0
    for c in (old_cat, new_cat):
        c.close()


def test_a_six_hour_track_and_ten_thousand_short_ones_are_one_segment(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    catalog, index = open_index(tmp_path / "db")
    long = synthetic_track(rng, 1, 5000, max_time=675_000)  # 6 h
    short = [synthetic_track(rng, 2 + i, 12, max_time=7000) for i in range(10_000)]
    assert max_tracks_for(675_000) == 4096  # what the 4-byte code would allow
    written = index.add([long, *short])
    assert len(written.parts) == 1 and len(index.names) == 1
    assert meta_of(index, index.names[0]).vals == "u64"
    tracks = {p.track_id: p for p in [long, *short]}
    q = np.unique(np.concatenate([long.hashes[:300], *[p.hashes for p in short[::50]]]))
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q)
    # Merged with another segment and with removals, still one segment, still exact.
    more = [synthetic_track(rng, 20_000 + i, 40) for i in range(5)]
    index.add(more)
    tracks.update((p.track_id, p) for p in more)
    remove(catalog, index, [5, 6, 20_001])
    assert index.compact(1) == 2 and len(index.names) == 1
    q = np.unique(np.concatenate([q, *[p.hashes for p in more]]))
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q, removed=[5, 6, 20_001])
    np.testing.assert_array_equal(index.track_peaks(1), long.peaks)
    catalog.close()


def test_a_large_segment_carries_a_shared_directory(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    catalog, index = open_index(tmp_path / "db")
    per_track = DIRECTORY_MIN_POSTINGS // 40 + 1
    batch = [synthetic_track(rng, 1 + i, per_track) for i in range(40)]
    index.add(batch[:20])
    index.add(batch[20:])
    small = [n for n in index.names if not meta_of(index, n).directory]
    assert len(small) == 2  # each half is below the directory threshold: binary search
    index.merge_chunk_postings = 1 << 18
    index.compact(1)
    (name,) = index.names
    meta = meta_of(index, name)
    assert meta.directory and meta.layout == LAYOUT_VERSION
    directory = np.load(index.root / name / "directory.npy", mmap_mode="r")
    keys = np.load(index.root / name / "keys.npy", mmap_mode="r")
    assert directory.dtype == np.int32 and directory[-1] == len(keys)
    q = np.unique(rng.integers(0, 1 << 22, 3000)).astype(np.uint32)
    tracks = {p.track_id: p for p in batch}
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q)
    # Past 2**31 postings the starts need 64 bits (too large to build here: the rule itself).
    assert directory_dtype(2**31 - 1) == np.int32 and directory_dtype(2**31) == np.int64
    catalog.close()


def test_layout1_segments_are_read_and_compacted_into_the_current_layout(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    root = tmp_path / "db"
    catalog, index = open_index(root)
    old_a = [synthetic_track(rng, 1 + i, int(rng.integers(10, 500))) for i in range(6)]
    old_b = [track(50, [1, 2, 3], [0, 5, 9], np.array([[0, 1], [4, 1023]], dtype=np.int32)), track(51, [])]
    name_a = write_layout1(catalog, root, old_a)
    write_layout1(catalog, root, old_b)
    new = [synthetic_track(rng, 100 + i, 300) for i in range(3)]
    index.add(new)
    tracks = {p.track_id: p for p in [*old_a, *old_b, *new]}
    assert json.loads((root / SEGMENTS_DIR / name_a / "meta.json").read_text()).keys() == {"time_bits", "postings"}
    q = np.unique(np.concatenate([p.hashes for p in tracks.values()]))
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q)
    for tid, p in tracks.items():
        np.testing.assert_array_equal(index.track_peaks(tid), p.peaks)
    # The policy sizes a layout-1 segment's removed postings by counting them.
    remove(catalog, index, [2, 3])
    sizes = {s.name: s for s in index.sizes()}
    assert sizes[name_a].dead_postings == len(old_a[1].hashes) + len(old_a[2].hashes)
    assert index.compact(1) == 3
    (name,) = index.names
    assert meta_of(index, name).layout == LAYOUT_VERSION
    counts = np.load(root / SEGMENTS_DIR / name / "track_postings.npy")
    tids = np.load(root / SEGMENTS_DIR / name / "tracks.npy")
    assert dict(zip(tids.tolist(), counts.tolist(), strict=True)) == {
        t: len(p.hashes) for t, p in tracks.items() if t not in (2, 3)
    }
    assert got(index.lookup(q, BIG_CAP), q) == expected(tracks, q, removed=[2, 3])
    np.testing.assert_array_equal(index.track_peaks(50), old_b[0].peaks)
    catalog.close()


def test_a_newer_layout_is_refused_in_words(tmp_path: Path) -> None:
    root = tmp_path / "db"
    catalog, index = open_index(root)
    index.add([track(1, [1, 2])])
    (name,) = index.names
    meta = root / SEGMENTS_DIR / name / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "layout": LAYOUT_VERSION + 1}))
    other = SegmentIndex(root, catalog)
    with pytest.raises(Exception, match=r"segment .* is unreadable: segment layout 3 is newer"):
        other.refresh(force=True)
    catalog.close()


def test_each_merge_step_takes_at_most_a_chunk_and_nearly_a_whole_one(tmp_path: Path) -> None:
    """The hash bound is found in key samples held in memory, not by probing the mapped key files:
    it must still never take more than a chunk (but for one hash's postings) and must fall short
    of the exact bound by at most a sample step per input."""
    from soundmark.index.merge import KEY_SPACE, MergeInput, _bound, _key_samples

    rng = np.random.default_rng(5)
    catalog, index = open_index(tmp_path / "db")
    for n in (40, 3, 25, 60):
        index.add([synthetic_track(rng, len(index.names) * 100 + i + 1, 500, hash_bits=16) for i in range(n)])
    inputs = [MergeInput.open(index.root / name) for name in index.names]
    keys = [np.asarray(i.keys.array) for i in inputs]
    chunk = 4_000
    samples, step = _key_samples(inputs, chunk)
    assert step > 1  # the samples really are sparser than the keys

    def exact_below(k: int, cursors: list[int]) -> int:
        return sum(int(np.searchsorted(a, np.uint32(k))) - c for a, c in zip(keys, cursors, strict=True))

    cursors, steps = [0] * len(inputs), 0
    while any(c < len(a) for a, c in zip(keys, cursors, strict=True)):
        bound = _bound(inputs, cursors, [len(a) for a in keys], chunk, samples, step)
        if bound < KEY_SPACE:
            assert exact_below(bound, cursors) <= chunk
            # A sample overstates an input's count by under a step: one hash more would not fit.
            assert exact_below(bound + 1, cursors) > chunk - len(inputs) * (step - 1)
        cursors = [len(a) if bound >= KEY_SPACE else int(np.searchsorted(a, np.uint32(bound))) for a in keys]
        steps += 1
    assert steps > 5  # the walk crossed many chunks
    catalog.close()
