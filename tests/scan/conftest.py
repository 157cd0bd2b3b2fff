"""Fixtures for the long-recording tests: a catalog of 32 composed pieces and a recording of them."""

from __future__ import annotations

import pytest
from mixing import SEEDS, SR, UNKNOWN_SEEDS, Recording, build_recording, piece_seconds

from soundmark.catalog.models import TrackMeta
from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, ingest
from soundmark.store import Store


@pytest.fixture(scope="session")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    root = tmp_path_factory.mktemp("scan")
    known = [(s, compose_piece(s, piece_seconds(s), SR)) for s in SEEDS]
    unknown = [(s, compose_piece(s, 40.0, SR)) for s in UNKNOWN_SEEDS]
    items = []
    titles = {}
    for s, x in known:
        path = root / f"piece-{s}.wav"
        write_wav(path, x, SR)
        titles[s] = f"Piece {s}"
        items.append(IngestItem(path, TrackMeta(title=titles[s], artist="Scan Band")))
    db = root / "db"
    with Store(db, FingerprintParams(), create=True) as store:
        report = ingest(store, items, processes=1)
    assert len(report.added) == len(SEEDS)
    samples, truth = build_recording(known, unknown, SR)
    path = root / "mix.wav"
    write_wav(path, samples, SR)
    return Recording(path, samples, truth, db, titles)
