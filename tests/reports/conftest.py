"""Fixtures of the airplay report tests: a store whose stations played PLAYS (airplay.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server
sys.path.insert(0, str(Path(__file__).resolve().parent))

from airplay import Airplay, describe_tracks, record_plays


@pytest.fixture()
def airplay(store_copy: Path) -> Airplay:
    tracks = describe_tracks(store_copy)
    token_id = record_plays(store_copy, [t.id for t in tracks])
    return Airplay(store_copy, tracks, token_id)
