"""Test helpers shared by every test module (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PIECE_SECONDS = 40.0
PIECE_RATE = 22050
CATALOG_SEEDS = (11, 22, 33, 44, 55, 66)
UNKNOWN_SEED = 99  # composed the same way but never ingested


@dataclass(frozen=True)
class Piece:
    seed: int
    path: Path
    samples: np.ndarray  # float32 at PIECE_RATE
    title: str


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear-phase polyphase resampling for test signals."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)


def wait_for(what: str, cond: Callable[[], object], timeout: float, poll: float = 0.2) -> object:
    """``cond()``'s first truthy value, polled until ``timeout`` seconds pass (then AssertionError)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")
