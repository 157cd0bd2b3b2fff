"""The airplay report on a PostgreSQL catalog (the plays trigger in PL/pgSQL, the play log read
back and summed) equals the report of the same plays on SQLite: both stores get the same three
tracks, the same metadata edits and the same plays through the monitor's write path (airplay.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from airplay import EXPECTED_PLAYS, EXPECTED_SECONDS, EXPECTED_STATIONS, describe_tracks, record_plays

from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sql import POSTGRESQL, SQLITE
from soundmark.catalog.writer import LocalDatabase
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.reports import Report, ReportRange, ReportService
from soundmark.store import NewTrack, Store

RANGES = [("2026-11-01", "2026-11-04", None, "UTC"), ("2026-10-31", "2026-11-05", "2", "Europe/Berlin"),
          ("2026-11-02", "2026-11-03", "1", "+03:00"), ("2026-12-01", "2026-12-02", None, "UTC")]  # fmt: skip


def _track(seed: int) -> NewTrack:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 1 << 22, 200, dtype=np.uint32)
    times = np.sort(rng.integers(0, 2000, 200)).astype(np.int32)
    peaks = np.stack([np.sort(rng.integers(0, 2000, 300)), rng.integers(0, 200, 300)], axis=1).astype(np.int32)
    meta = TrackMeta(title=f"Song {seed}", artist="Test Band")
    return NewTrack(meta, 60.0, f"/music/{seed}.wav", f"h{seed}", hashes, times, peaks)


@pytest.fixture()
def stores(tmp_path: Path, pg_catalog_url: str, shared_index_url: str) -> Iterator[dict[str, Path]]:
    """A SQLite store and a PostgreSQL + Redis store with the same tracks, metadata and plays."""
    roots = {SQLITE: tmp_path / "lite", POSTGRESQL: tmp_path / "pg"}
    urls = {SQLITE: (None, None), POSTGRESQL: (shared_index_url, pg_catalog_url)}
    for name, root in roots.items():
        index_url, catalog_url = urls[name]
        backend = "memory" if index_url is None else "segments"
        with Store(root, FingerprintParams(), create=True, index_backend=backend, index_url=index_url,
                   catalog_url=catalog_url) as store, store.writer() as w:  # fmt: skip
            w.commit([_track(seed) for seed in (1, 2, 3)])
        assert (store.catalog.dialect == POSTGRESQL) == (name == POSTGRESQL)
        tracks = describe_tracks(root)
        record_plays(root, [t.id for t in tracks])
    yield roots


def _report(root: Path, rng: ReportRange) -> tuple[Report, list[object]]:
    database = LocalDatabase(root)
    try:
        service = ReportService(database, "+03:00")
        return service.report(rng), service.plays(rng)
    finally:
        database.close()


def test_reports_are_the_same_on_both(stores: dict[str, Path]) -> None:
    for args in RANGES:
        rng = ReportRange.parse(*args)
        lite, pg = _report(stores[SQLITE], rng), _report(stores[POSTGRESQL], rng)
        assert lite == pg, args
    report, plays = _report(stores[POSTGRESQL], ReportRange.parse("2026-11-01", "2026-11-04"))
    assert (report.plays, report.seconds, len(plays)) == (EXPECTED_PLAYS, EXPECTED_SECONDS, EXPECTED_PLAYS)
    assert {s.radio_id: (s.plays, s.seconds, len(s.tracks)) for s in report.stations} == EXPECTED_STATIONS
    assert report.tracks[0].isrc == "USRC17607839" and report.tracks[2].artist == "Other Band"
    assert [s.url for s in report.stations] == ["http://radio.example/1.mp3", "http://radio.example/2.mp3"]


def test_paged_play_log_is_the_same_on_both(stores: dict[str, Path]) -> None:
    rng = ReportRange.parse("2026-10-31", "2026-11-05")
    for offset, limit in ((0, 3), (3, 3), (6, 10), (20, 5)):

        def page(root: Path, offset: int = offset, limit: int = limit) -> list[object]:
            database = LocalDatabase(root)
            try:
                return list(ReportService(database, "+03:00").plays(rng, offset, limit))
            finally:
                database.close()

        assert page(stores[SQLITE]) == page(stores[POSTGRESQL]), (offset, limit)
