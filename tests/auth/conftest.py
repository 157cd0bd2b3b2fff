"""Fixtures of the accounts tests: API nodes sharing one PostgreSQL catalog and Redis index."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server, contention
sys.path.insert(0, str(Path(__file__).resolve().parent))  # shared_nodes
from live_server import stop_server
from shared_nodes import SharedStore, cli

from support import Piece


@pytest.fixture()
def shared_store(
    pieces: list[Piece], tmp_path: Path, pg_catalog_url: str, shared_index_url: str
) -> Iterator[SharedStore]:
    env = {k: v for k, v in os.environ.items() if k != "SOUNDMARK_DB"}
    env |= {"SOUNDMARK_CATALOG_URL": pg_catalog_url, "SOUNDMARK_INDEX_URL": shared_index_url}
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,title,artist\n" + "".join(f"{p.path},{p.title},Test Band\n" for p in pieces[:2]))
    cli(env, "add", "--db", str(tmp_path / "a"), "-j", "1", "-q", "--manifest", str(manifest))
    store = SharedStore(tmp_path, env, pieces[:2])
    try:
        yield store
    finally:
        for s in store.servers:
            stop_server(s)
