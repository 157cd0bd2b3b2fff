"""API nodes sharing one PostgreSQL catalog and Redis index, for the accounts tests (the fixture
is ``shared_store`` in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from live_server import Server, start_server

from support import Piece


def cli(env: dict[str, str], *args: str) -> str:
    """``soundmark ARGS`` in a process of its own; its stdout (it must succeed)."""
    proc = subprocess.run(
        [sys.executable, "-m", "soundmark", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class SharedStore:
    """A store in a PostgreSQL schema + a Redis prefix of the test's own, holding two demo pieces
    (added by ``soundmark add`` through node directory ``a``); ``start`` runs API nodes on it,
    each from a directory of its own."""

    root: Path
    env: dict[str, str]
    pieces: list[Piece]
    servers: list[Server] = field(default_factory=list)

    def start(self, *flags: str, nodes: int = 2) -> list[Server]:
        for i in range(nodes):
            name = "ab"[i] if i < 2 else f"n{i}"
            log = self.root / f"{name}-{len(self.servers)}.log"
            self.servers.append(start_server(self.root / name, log, *flags, env=self.env))
        return self.servers[-nodes:]
