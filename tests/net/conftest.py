"""Fixtures for net/ tests: loopback file servers on 127.0.0.1 and, where the OS allows, 127.0.0.2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from net_files import FileServer


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer("127.0.0.1")
    yield srv
    srv.close()


@pytest.fixture
def other() -> Iterator[FileServer]:
    """A second server on 127.0.0.2: loopback too, but another address than 127.0.0.1."""
    try:
        srv = FileServer("127.0.0.2")
    except OSError:
        pytest.skip("cannot bind 127.0.0.2")
    yield srv
    srv.close()
