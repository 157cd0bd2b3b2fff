"""Audio for net/ stream tests, encoded with PyAV: tones as MPEG-TS (AAC) or MP3 files, and the
dominant frequency of decoded samples."""

from __future__ import annotations

import io

import av
import numpy as np


def tone(freq: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encode(samples: np.ndarray, rate: int, fmt: str = "mpegts", codec: str = "aac", channels: int = 1) -> bytes:
    """``samples`` (mono float32) as a whole file of container ``fmt``, ``channels`` identical channels."""
    buf = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout
        block = 1152
        for pos in range(0, len(samples), block):
            chunk = np.tile(samples[pos : pos + block], (channels, 1))
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=layout)
            frame.sample_rate, frame.pts = rate, pos
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))
