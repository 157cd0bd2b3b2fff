"""A music folder with planted duplicates, written once per session with real encoders (PyAV).

Twenty distinct composed pieces, plus:
  - piece 1 again as MP3, Opus and FLAC (re-encodes: ``same``);
  - piece 2 "remastered": 4 dB quieter, bass raised, treble cut, softly compressed (``same``);
  - a 20 s radio edit of piece 3, its seconds 8–28 (``contains``);
  - a mix: 12 s of piece 5, all of piece 4, 12 s of piece 6 (piece 4 ``contains`` at 12 s);
  - ``broken.mp3``, which is not audio.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import butter, sosfilt

from soundmark.demo import compose_piece, write_wav
from support import PIECE_RATE, resample

SECONDS = 40.0
SEEDS = tuple(range(301, 321))  # twenty distinct pieces
EDIT = (8.0, 28.0)  # the radio edit's stretch of piece 3, seconds
MIX_LEAD = 12.0  # seconds of piece 5 before piece 4 starts in the mix


@dataclass(frozen=True)
class Library:
    root: Path
    names: dict[str, str]  # role → file name


def encode(samples: np.ndarray, rate: int, fmt: str, codec: str, bit_rate: int | None = None) -> bytes:
    """Mono float32 ``samples`` at ``rate`` as a whole file of container ``fmt``."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        if bit_rate:
            stream.bit_rate = bit_rate
        block = 960
        for pos in range(0, len(samples), block):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[None, pos : pos + block]), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def remaster(x: np.ndarray, rate: int) -> np.ndarray:
    """Level and EQ changed as a remaster would: -4 dB, +6 dB under 200 Hz, treble above 3 kHz cut."""
    low = sosfilt(butter(2, 200, "lowpass", fs=rate, output="sos"), x)
    y = sosfilt(butter(4, 3000, "lowpass", fs=rate, output="sos"), x + low)
    y = np.tanh(2.0 * y) / 2.0  # a gentle compressor
    return (10 ** (-4 / 20) * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="session")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("library")
    music = {seed: compose_piece(seed, SECONDS, PIECE_RATE) for seed in SEEDS}
    names = {}
    for i, seed in enumerate(SEEDS, 1):
        names[f"t{i}"] = f"t{i:02d}.wav"
        write_wav(root / names[f"t{i}"], music[seed], PIECE_RATE)
    one, r = music[SEEDS[0]], PIECE_RATE
    names["t1.mp3"] = "copies/t01.mp3"
    names["t1.opus"] = "copies/t01.opus"
    names["t1.flac"] = "copies/t01.flac"
    (root / "copies").mkdir()
    (root / names["t1.mp3"]).write_bytes(encode(one, r, "mp3", "libmp3lame", 96_000))
    (root / names["t1.opus"]).write_bytes(encode(resample(one, r, 48000), 48000, "ogg", "libopus", 48_000))
    (root / names["t1.flac"]).write_bytes(encode(one, r, "flac", "flac"))
    names["t2.remaster"] = "t02 (remaster).m4a"
    (root / names["t2.remaster"]).write_bytes(encode(remaster(music[SEEDS[1]], r), r, "ipod", "aac", 128_000))
    names["t3.edit"] = "t03 (radio edit).wav"
    write_wav(root / names["t3.edit"], music[SEEDS[2]][int(EDIT[0] * r) : int(EDIT[1] * r)], r)
    names["mix"] = "mix.mp3"
    mix = np.concatenate([music[SEEDS[4]][: int(MIX_LEAD * r)], music[SEEDS[3]], music[SEEDS[5]][: int(12.0 * r)]])
    (root / names["mix"]).write_bytes(encode(mix, r, "mp3", "libmp3lame", 128_000))
    names["broken"] = "broken.mp3"
    (root / names["broken"]).write_text("this is not audio")
    return Library(root, names)
