"""The shared store of the multi-node tests: where its catalog and index are, and how a node
process or the CLI reaches it (imported by tests/nodes/conftest.py and the tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import Store
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
