"""A synthetic long recording: catalog pieces back to back with cross-fades, talk-over noise, a
sped-up section and stretches of unknown music, with its truth."""

from __future__ import annotations

from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from soundmark.demo import over_the_air_parts

SR = 8000
SEEDS = tuple(range(1001, 1033))  # 32 catalog pieces
UNKNOWN_SEEDS = (2001, 2002, 2003, 2004, 2005, 2006)


def piece_seconds(seed: int) -> float:
    return 30.0 + (seed * 7919) % 16  # 30–45 s


@dataclass(frozen=True)
class Played:
    seed: int  # the composed piece
    known: bool  # in the catalog
    start: float  # audible span in the recording (seconds)
    end: float
    ref_start: float  # position in the piece where playback begins
    speed: float
    talk_over: bool


def speed_up(x: np.ndarray, speed: float) -> np.ndarray:
    """``x`` played ``speed`` times as fast (time and pitch, like a pitch fader)."""
    up, down = 100, round(100 * speed)
    g = gcd(up, down)
    return resample_poly(x, up // g, down // g).astype(np.float32)


def build_recording(
    known: list[tuple[int, np.ndarray]], unknown: list[tuple[int, np.ndarray]], sr: int, seed: int = 7
) -> tuple[np.ndarray, list[Played]]:
    """Every known piece once (a random excerpt of it), an unknown piece after every fifth."""
    rng = np.random.default_rng(seed)
    out = np.zeros(0, dtype=np.float32)
    truth: list[Played] = []
    queue: list[tuple[int, np.ndarray, bool]] = []
    unknown_iter = iter(unknown)
    for i, (s, x) in enumerate(known):
        queue.append((s, x, True))
        if i % 5 == 4:
            u = next(unknown_iter, None)
            if u is not None:
                queue.append((u[0], u[1], False))
    for i, (s, x, is_known) in enumerate(queue):
        ref_start = 0.0 if i % 3 == 0 else float(rng.uniform(0, 6))
        seg = x[int(ref_start * sr) :].astype(np.float32).copy()
        speed = 1.04 if i == 3 else (0.96 if i == 9 else 1.0)
        if speed != 1.0:
            seg = speed_up(seg, speed)
        talk = is_known and i % 4 == 2
        if talk:  # 12 s of babble at 5 dB SNR over the middle of the piece
            a, n = len(seg) // 3, 12 * sr
            _, noise = over_the_air_parts(seg[a : a + n], sr, seed=s, snr_db=5.0)
            seg[a : a + n] += noise
        fade = int(rng.uniform(5, 10) * sr) if len(out) else 0
        fade = min(fade, len(seg) // 3)
        if fade:
            seg[:fade] *= np.sin(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
            out[len(out) - fade :] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
        start = len(out) - fade
        mixed = np.zeros(start + len(seg), dtype=np.float32)
        mixed[: len(out)] = out
        mixed[start:] += seg
        out = mixed
        truth.append(Played(s, is_known, start / sr, (start + len(seg)) / sr, ref_start, speed, talk))
    return out, truth


@dataclass(frozen=True)
class Recording:
    path: Path
    samples: np.ndarray
    truth: list[Played]
    db: Path
    titles: dict[int, str]  # seed -> title
