"""Shared fixtures: a small catalog of procedurally composed pieces, ingested once per session, and
the scale-out backends (a PostgreSQL schema and a Redis key prefix of a test's own).

``SOUNDMARK_TEST_BACKENDS=shared`` runs every test that builds its store through ``Settings`` (the
CLI, the server, the Python API) on PostgreSQL + the Redis Cluster instead of the embedded store:
a sweep a developer runs over a directory to find what the shared backends break
(``SOUNDMARK_TEST_BACKENDS=shared pytest tests/cli``); CI runs the dedicated backend tests only.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from servers import delete_prefix, drop_schema, server_urls
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


@pytest.fixture(scope="session")
def backend_servers() -> dict[str, str]:
    """``SOUNDMARK_TEST_*_URL`` of the running Redis Cluster and PostgreSQL; fails (never skips)
    without them."""
    try:
        return server_urls()
    except RuntimeError as exc:
        pytest.fail(f"no scale-out servers for this test: {exc}")


@pytest.fixture()
def pg_catalog_url(backend_servers: dict[str, str]) -> Iterator[str]:
    """A catalog URL with a PostgreSQL schema of this test's own (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{backend_servers['SOUNDMARK_TEST_POSTGRES_URL']}?schema={schema}"
    drop_schema(backend_servers["SOUNDMARK_TEST_POSTGRES_URL"], schema)


@pytest.fixture()
def shared_index_url(backend_servers: dict[str, str]) -> Iterator[str]:
    """An index URL on the Redis Cluster with a key prefix of this test's own (deleted afterwards)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield f"{backend_servers['SOUNDMARK_TEST_REDIS_URL']}/{prefix}"
    delete_prefix(backend_servers["SOUNDMARK_TEST_REDIS_URL"], prefix)


@pytest.fixture(autouse=True)
def _sweep_on_shared_backends(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``SOUNDMARK_TEST_BACKENDS=shared``: this test's Settings point at the shared backends."""
    if os.environ.get("SOUNDMARK_TEST_BACKENDS") != "shared":
        return
    catalog = request.getfixturevalue("pg_catalog_url")
    index = request.getfixturevalue("shared_index_url")
    monkeypatch.setenv("SOUNDMARK_CATALOG_URL", catalog)
    monkeypatch.setenv("SOUNDMARK_INDEX_URL", index)
