"""Decoded frames to mono float32 at the engine rate, resampled a second of audio at a time.

FFmpeg's resampler (through ``av.AudioResampler``) costs about 33 µs a call whatever the frame's
length, and a Vorbis or MP3 stream brings 40-60 frames a second: fed frame by frame it was half
of a whole decode. So the frames are mixed down to mono here, in NumPy on views of their planes
(no per-frame ``to_ndarray`` copy), and handed to the resampler about a second at a time, which
leaves its cost to the filtering itself. The mix-down is the channels' mean (FFmpeg's
stereo-to-mono matrix is 3 dB louder, (L+R)/√2, and can clip; the fingerprint does not depend
on the level).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, cast

import av
import numpy as np

from soundmark.errors import AudioError

# FFmpeg's packed sample formats (the planar ones end in "p") as NumPy reads them: dtype, the
# offset of silence, the scale that brings full range to ±1.
_FORMATS: dict[str, tuple[type[np.generic], float, float]] = {
    "u8": (np.uint8, 128.0, 1 / 128),
    "s16": (np.int16, 0.0, 1 / 32768),
    "s32": (np.int32, 0.0, 2.0**-31),
    "s64": (np.int64, 0.0, 2.0**-63),
    "flt": (np.float32, 0.0, 1.0),
    "dbl": (np.float64, 0.0, 1.0),
}


# A chunk never holds more than this many input samples (1 MB), whatever rate a file claims: a
# header saying 1 GHz must not make a second of input a gigabyte.
MAX_CHUNK_SAMPLES = 1 << 18


def _view(plane: object, dtype: type[np.generic], count: int) -> np.ndarray:
    """A plane's first ``count`` samples, without a copy (a plane is a buffer; PyAV's stubs do
    not say so)."""
    return np.frombuffer(cast(Any, plane), dtype, count)


def frame_mono(frame: av.AudioFrame) -> np.ndarray:
    """One decoded frame as mono float32 at its own rate (the channels' mean, full range ±1)."""
    name = frame.format.name
    spec = _FORMATS.get(name[:-1] if frame.format.is_planar else name)
    if spec is None:
        raise AudioError(f"cannot decode audio: unsupported sample format {name}")
    dtype, offset, scale = spec
    n = frame.samples
    planes = frame.planes
    if frame.format.is_planar:
        ch = max(1, min(frame.layout.nb_channels or len(planes), len(planes)))
        x = _view(planes[0], dtype, n).astype(np.float32)
        for p in planes[1:ch]:
            x += _view(p, dtype, n)
    else:
        ch = max(1, frame.layout.nb_channels)
        x = _view(planes[0], dtype, n * ch).reshape(n, ch).sum(axis=1, dtype=np.float32)
    if offset:
        x -= offset * ch
    x *= scale / ch
    return x


class MonoResampler:
    """Frames in, mono float32 at ``rate`` out, in chunks of about ``chunk_seconds`` of input.

    A stream whose rate changes midway (chained Ogg, some radio recordings) is resampled from
    each rate in turn: the pending audio is flushed through the old rate's filter first.
    """

    def __init__(self, rate: int, chunk_seconds: float = 1.0):
        self.rate = rate
        self.chunk_seconds = chunk_seconds
        self._src = 0  # the current input rate (0: none yet)
        self._resampler: av.AudioResampler | None = None
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._pts = 0

    def push(self, frame: av.AudioFrame) -> list[np.ndarray]:
        """Feed one decoded frame; returns the output blocks that became ready (maybe none)."""
        out: list[np.ndarray] = []
        if frame.sample_rate != self._src:
            out = self._drain(final=True)
            self._src = frame.sample_rate
            self._pts = 0
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        x = frame_mono(frame)
        if len(x):
            self._pending.append(x)
            self._pending_n += len(x)
        if self._pending_n >= min(self._src * self.chunk_seconds, MAX_CHUNK_SAMPLES):
            out += self._drain(final=False)
        return out

    def flush(self) -> list[np.ndarray]:
        """The rest of the audio, the resampler's tail included."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[np.ndarray]:
        if self._resampler is None:
            return []
        out: list[np.ndarray] = []
        if self._pending_n:
            x = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending, self._pending_n = [], 0
            if self._src == self.rate:
                out.append(x)
            else:
                frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
                frame.sample_rate = self._src
                frame.time_base = Fraction(1, self._src)
                frame.pts = self._pts
                self._pts += len(x)
                out += [o.to_ndarray().reshape(-1) for o in self._resampler.resample(frame)]
        if final and self._src != self.rate:
            out += [o.to_ndarray().reshape(-1) for o in self._resampler.resample(None)]
        return [o for o in out if len(o)]
