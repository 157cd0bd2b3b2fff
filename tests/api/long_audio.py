"""Small files that decode to hours of audio (the decompression-bomb shape)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

RATE = 8000


def bursts(seconds: float, seed: int = 1, rate: int = RATE) -> np.ndarray:
    """Digital silence with a 0.25 s chord of two random pitches every 2 s (int16 mono).

    FLAC stores the silence in a few bytes per block, so an hour takes about 3 MB, and the
    random pitches make every stretch of it recognisable.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(rate // 4) / rate
    env = np.hanning(len(t))
    out = np.zeros(int(seconds) // 2 * 2 * rate, dtype=np.int16)
    for k in range(len(out) // (2 * rate)):
        f1, f2 = rng.uniform(300, 3000, 2)
        burst = 0.3 * env * (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t))
        out[2 * rate * k : 2 * rate * k + len(t)] = (burst * 32767).astype(np.int16)
    return out


def write_flac(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Encode int16 mono samples to FLAC with PyAV."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.format = "s16"
        step = 60 * rate
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(
                samples[start : start + step].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
