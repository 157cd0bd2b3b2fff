"""Fixtures of the multi-node tests: one catalog in PostgreSQL and one index on the Redis Cluster,
shared by several soundmark processes that each have their own ``--db`` directory."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server

from servers import delete_prefix, drop_schema
from support import Piece


@dataclass(frozen=True)
class Cluster:
    """Where the shared catalog and index are, and the environment a node process runs with."""

    catalog_url: str
    index_url: str
    root: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SOUNDMARK_CATALOG_URL": self.catalog_url, "SOUNDMARK_INDEX_URL": self.index_url}

    def node_dir(self, name: str) -> Path:
        """A node's own store directory (it will hold only ``catalog.url`` and the lock file)."""
        return self.root / name

    def open_store(self, node: str = "probe") -> Store:
        """The shared store, opened in this test process through a node directory of its own."""
        return Store(self.node_dir(node), FingerprintParams(), catalog_url=self.catalog_url)

    def cli(self, *args: str, node: str = "cli", check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "soundmark", *args]
        env = {**self.env, "SOUNDMARK_DB": str(self.node_dir(node))}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, check=check, timeout=300)


def write_manifest(folder: Path, pieces: list[Piece]) -> Path:
    """A CSV manifest of ``pieces`` (titles as the pieces fixture names them)."""
    path = folder / "manifest.csv"
    lines = ["path,title,artist"] + [f"{p.path},{p.title},Test Band" for p in pieces]
    path.write_text("\n".join(lines) + "\n")
    return path


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
