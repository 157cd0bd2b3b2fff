"""The multi-node job tests' store: a catalog in a PostgreSQL schema and an index under a Redis
key prefix of a module's own, and the directories of the "nodes" that share it (each holds only
``catalog.url`` and its lock file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from soundmark.demo import write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample


@dataclass(frozen=True)
class SharedStore:
    catalog_url: str
    index_url: str
    root: Path

    @property
    def env(self) -> dict[str, str]:
        """What a ``serve`` node of this store runs with."""
        return {"SOUNDMARK_CATALOG_URL": self.catalog_url, "SOUNDMARK_INDEX_URL": self.index_url,
                "SOUNDMARK_SCAN_WORKERS": "1"}  # fmt: skip

    def node(self, name: str) -> Path:
        """A node's own store directory, joined to the shared catalog."""
        path = self.root / name
        Store(path, FingerprintParams(), catalog_url=self.catalog_url).close()
        return path


def mix_file(pieces: list[Piece], path: Path, repeat: int = 1, rate: int = 8000) -> Path:
    """The pieces back to back ``repeat`` times (8 kHz keeps a long recording's file small)."""
    samples = np.concatenate([p.samples.astype(np.float32) for _ in range(repeat) for p in pieces])
    write_wav(path, resample(samples, PIECE_RATE, rate), rate)
    return path
