"""Fixtures for `soundmark listen`: a private PulseAudio with a null sink (pulse.py), the API
tests' live server (tests/api/live_server.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_server import server
from pulse import Pulse, PulseUnavailable, private_pulse

__all__ = ["pulse", "server"]


@pytest.fixture(scope="module")
def pulse() -> Iterator[Pulse]:
    """The daemon for this module; in CI (CI=true) a daemon that cannot start fails the tests."""
    try:
        with private_pulse() as p:
            yield p
    except PulseUnavailable as exc:
        message = f"PulseAudio cannot start for the listen tests: {exc}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
