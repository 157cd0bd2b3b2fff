"""Shared fixtures: a small catalog of procedurally composed pieces, ingested once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from soundmark.catalog.models import TrackMeta
from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, ingest
from soundmark.store import Store
from support import CATALOG_SEEDS, PIECE_RATE, PIECE_SECONDS, UNKNOWN_SEED, Piece


@pytest.fixture(scope="session")
def pieces(tmp_path_factory: pytest.TempPathFactory) -> list[Piece]:
    root = tmp_path_factory.mktemp("pieces")
    out = []
    for seed in CATALOG_SEEDS:
        x = compose_piece(seed, PIECE_SECONDS, PIECE_RATE)
        path = root / f"piece-{seed}.wav"
        write_wav(path, x, PIECE_RATE)
        out.append(Piece(seed, path, x, f"Piece {seed}"))
    return out


@pytest.fixture(scope="session")
def unknown_piece() -> np.ndarray:
    return compose_piece(UNKNOWN_SEED, PIECE_SECONDS, PIECE_RATE)


@pytest.fixture(scope="session")
def built_store(tmp_path_factory: pytest.TempPathFactory, pieces: list[Piece]) -> Path:
    """A store holding every piece (built once; copy it before changing it)."""
    db = tmp_path_factory.mktemp("store") / "db"
    items = [IngestItem(p.path, TrackMeta(title=p.title, artist="Test Band")) for p in pieces]
    with Store(db, FingerprintParams(), create=True) as store:
        report = ingest(store, items, processes=1)
    assert len(report.added) == len(pieces)
    return db


@pytest.fixture()
def store_copy(built_store: Path, tmp_path: Path) -> Path:
    """A private copy of the session store that a test may change."""
    dst = tmp_path / "db"
    shutil.copytree(built_store, dst)
    return dst


@pytest.fixture()
def store(built_store: Path) -> Store:
    s = Store(built_store, FingerprintParams())
    yield s
    s.close()
