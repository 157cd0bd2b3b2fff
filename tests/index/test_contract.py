"""The index contract (tests/index/contract.py) run against every backend of index/factory.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from contract import BIG_CAP, Backend, Driver, IndexContract, got, query_hashes, random_track

from soundmark.catalog.sqlite import Catalog
from soundmark.index.base import TrackPostings
from soundmark.index.factory import INDEX_BACKENDS, open_index


@pytest.fixture()
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    """A real, migrated catalog: the segment backend keeps its manifest in it."""
    root = tmp_path / "db"
    root.mkdir()
    c = Catalog(root)
    yield c
    c.close()


def driver(kind: str, root: Path, catalog: Catalog) -> Driver:
    return Driver(open_index(kind, root, catalog), catalog)


class TestSegmentIndex(IndexContract):
    @pytest.fixture()
    def backend(self, tmp_path: Path, catalog: Catalog) -> Backend:
        return driver("segments", tmp_path / "db", catalog)


class TestMemoryIndex(IndexContract):
    @pytest.fixture()
    def backend(self, tmp_path: Path, catalog: Catalog) -> Backend:
        return driver("memory", tmp_path / "db", catalog)


def test_every_backend_is_tested() -> None:
    # "redis": TestRedisClusterIndex in test_redis_cluster.py (it needs the cluster fixtures)
    assert set(INDEX_BACKENDS) == {"segments", "memory", "redis"}


def test_an_unknown_backend_is_refused(tmp_path: Path, catalog: Catalog) -> None:
    with pytest.raises(ValueError, match=r"unknown index backend 'lmdb'.*segments, memory, redis"):
        open_index("lmdb", tmp_path, catalog)


def test_memory_and_segments_give_the_same_results(tmp_path: Path) -> None:
    """The same batches in both backends: the same hits (as multisets) and peaks, at every cap."""
    rng = np.random.default_rng(11)
    (tmp_path / "seg").mkdir()
    (tmp_path / "mem").mkdir()
    seg_catalog, mem_catalog = Catalog(tmp_path / "seg"), Catalog(tmp_path / "mem")
    try:
        segments = driver("segments", tmp_path / "seg", seg_catalog)
        memory = driver("memory", tmp_path / "mem", mem_catalog)
        tracks: dict[int, TrackPostings] = {}
        for first, n in ((1, 3), (4, 1), (5, 4)):
            batch = [random_track(rng, tid) for tid in range(first, first + n)]
            segments.add(batch)
            memory.add(batch)
            tracks.update((p.track_id, p) for p in batch)
        assert segments.index.postings() == memory.index.postings()
        q = query_hashes(rng, n=2000)
        for cap in (0, 1, 3, BIG_CAP):
            assert got(segments.index.lookup(q, cap), q) == got(memory.index.lookup(q, cap), q)
        for tid in [*tracks, 999]:
            np.testing.assert_array_equal(segments.index.track_peaks(tid), memory.index.track_peaks(tid))
        # After removals and a compaction they agree again, postings counts included.
        for d in (segments, memory):
            d.remove([2, 5])
            d.writer.compact(1)
        assert segments.index.postings() == memory.index.postings()
        for cap in (1, BIG_CAP):
            assert got(segments.index.lookup(q, cap), q) == got(memory.index.lookup(q, cap), q)
    finally:
        seg_catalog.close()
        mem_catalog.close()
