"""Fixtures of the multi-node job tests (``jobs_cluster.py``): a shared store holding the test
pieces, once per module."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server, procs

from jobs_cluster import SharedStore

from servers import delete_prefix, drop_schema
from soundmark.catalog.models import TrackMeta
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, ingest
from soundmark.store import Store
from support import Piece


@pytest.fixture(scope="module")
def shared_store(
    backend_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory, pieces: list[Piece]
) -> Iterator[SharedStore]:
    pg, redis = backend_servers["SOUNDMARK_TEST_POSTGRES_URL"], backend_servers["SOUNDMARK_TEST_REDIS_URL"]
    schema, prefix = f"j_{uuid.uuid4().hex[:12]}", f"jobs-{uuid.uuid4().hex[:12]}"
    shared = SharedStore(f"{pg}?schema={schema}", f"{redis}/{prefix}", tmp_path_factory.mktemp("jobs-nodes"))
    items = [IngestItem(p.path, TrackMeta(title=p.title, artist="Test Band")) for p in pieces]
    try:
        with Store(shared.root / "ingest", FingerprintParams(), create=True, catalog_url=shared.catalog_url,
                   index_url=shared.index_url) as store:  # fmt: skip
            assert len(ingest(store, items, processes=1).added) == len(pieces)
        yield shared
    finally:
        drop_schema(pg, schema)
        delete_prefix(redis, prefix)
