"""Fixtures of the multi-node tests: one catalog in PostgreSQL and one index on the Redis Cluster,
shared by several soundmark processes that each have their own ``--db`` directory."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server

from nodes_cluster import Cluster, write_manifest

from servers import delete_prefix, drop_schema
from support import Piece


def _cluster(backend_servers: dict[str, str], root: Path) -> Iterator[Cluster]:
    schema = f"n_{uuid.uuid4().hex[:12]}"
    prefix = f"nodes-{uuid.uuid4().hex[:12]}"
    pg, redis = backend_servers["SOUNDMARK_TEST_POSTGRES_URL"], backend_servers["SOUNDMARK_TEST_REDIS_URL"]
    yield Cluster(f"{pg}?schema={schema}", f"{redis}/{prefix}", root)
    drop_schema(pg, schema)
    delete_prefix(redis, prefix)


@pytest.fixture(scope="module")
def cluster(
    backend_servers: dict[str, str], tmp_path_factory: pytest.TempPathFactory, pieces: list[Piece]
) -> Iterator[Cluster]:
    """A shared store holding the test pieces (added once per module through the CLI)."""
    for c in _cluster(backend_servers, tmp_path_factory.mktemp("cluster")):
        c.cli("add", "--quiet", "--processes", "1", "--manifest", str(write_manifest(c.root, pieces)))
        yield c


@pytest.fixture()
def empty_cluster(backend_servers: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    """A shared store of this test's own, empty."""
    yield from _cluster(backend_servers, tmp_path)
