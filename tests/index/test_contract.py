"""The index contract (tests/index/contract.py) run against every backend."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pytest
from contract import BIG_CAP, Backend, IndexContract, got, query_hashes, random_track

from soundmark.index.base import FingerprintIndex, TrackPostings
from soundmark.index.memory import MemoryIndex
from soundmark.index.segments import SegmentIndex, max_tracks_for


class SegmentBackend:
    """``SegmentIndex`` driven as ``Store`` drives it: each batch becomes segments written to disk
    (split as ``StoreWriter.commit`` splits them), and every change is a ``load`` of the live
    segment names and the removed track ids (the catalog's tombstones)."""

    def __init__(self, root: Path):
        self._index = SegmentIndex(root)
        self._names: list[str] = []
        self._removed: set[int] = set()
        self._index.load(self._names, self._removed)

    @property
    def index(self) -> FingerprintIndex:
        return self._index

    def add(self, batch: Sequence[TrackPostings]) -> None:
        max_time = max(int(p.times.max()) if len(p.times) else 0 for p in batch)
        step = max_tracks_for(max_time)
        for start in range(0, len(batch), step):
            self._names.append(self._index.write(batch[start : start + step]).name)
        self._index.load(self._names, self._removed)

    def remove(self, track_ids: Iterable[int]) -> None:
        self._removed |= {int(t) for t in track_ids}
        self._index.load(self._names, self._removed)


class MemoryBackend:
    def __init__(self) -> None:
        self._index = MemoryIndex()

    @property
    def index(self) -> FingerprintIndex:
        return self._index

    def add(self, batch: Sequence[TrackPostings]) -> None:
        self._index.add(batch)

    def remove(self, track_ids: Iterable[int]) -> None:
        self._index.remove(track_ids)


class TestSegmentIndex(IndexContract):
    @pytest.fixture()
    def backend(self, tmp_path: Path) -> Backend:
        return SegmentBackend(tmp_path / "db")


class TestMemoryIndex(IndexContract):
    @pytest.fixture()
    def backend(self) -> Backend:
        return MemoryBackend()


def test_memory_and_segments_give_the_same_results(tmp_path: Path) -> None:
    """The same batches in both backends: the same hits (as multisets) and peaks, at every cap."""
    rng = np.random.default_rng(11)
    segments, memory = SegmentBackend(tmp_path / "db"), MemoryBackend()
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
