"""Tests for soundmark.audio.mono: every sample format FFmpeg's decoders hand out, mixed down and
resampled a second at a time, against the same audio built in NumPy."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from soundmark.audio.mono import MAX_CHUNK_SAMPLES, MonoResampler, frame_mono

# (format, numpy dtype, full scale, silence)
FORMATS = [
    ("u8", np.uint8, 127, 128),
    ("s16", np.int16, 32767, 0),
    ("s32", np.int32, 2**31 - 1, 0),
    ("flt", np.float32, 1.0, 0),
    ("dbl", np.float64, 1.0, 0),
]


def _frame(channels: np.ndarray, fmt: str, planar: bool, rate: int = 44100) -> av.AudioFrame:
    """A frame of ``channels`` (ch, n) in [-1, 1] stored as ``fmt``."""
    _, dtype, full, zero = next(f for f in FORMATS if f[0] == fmt)
    data = channels * full + zero
    data = (np.round(data) if np.issubdtype(dtype, np.integer) else data).astype(dtype)
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels.shape[0]]
    packed = data if planar else data.T.reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(packed), format=fmt + ("p" if planar else ""), layout=layout
    )
    frame.sample_rate = rate
    return frame


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("fmt", [f[0] for f in FORMATS])
@pytest.mark.parametrize("nch", [1, 2, 6])
def test_frame_mono_is_the_channels_mean_at_full_scale(fmt: str, planar: bool, nch: int) -> None:
    rng = np.random.default_rng(nch)
    channels = rng.uniform(-0.9, 0.9, size=(nch, 700))
    out = frame_mono(_frame(channels, fmt, planar))
    assert out.dtype == np.float32 and out.shape == (700,)
    tol = {"u8": 2 / 127, "s16": 2e-4, "s32": 1e-6}.get(fmt, 1e-6)
    np.testing.assert_allclose(out, channels.mean(axis=0), atol=tol)


def test_resampled_in_chunks_equals_one_pass() -> None:
    """Frames of 1,152 samples (MP3's) fed one by one give what one call on the whole gives."""
    rate_in, rate_out = 44100, 8000
    t = np.arange(rate_in * 5) / rate_in
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 1250 * t)])
    m = MonoResampler(rate_out)
    blocks: list[np.ndarray] = []
    for start in range(0, stereo.shape[1], 1152):
        blocks += m.push(_frame(stereo[:, start : start + 1152], "flt", True, rate_in))
    blocks += m.flush()
    chunked = np.concatenate(blocks)

    whole = av.AudioFrame.from_ndarray(
        stereo.mean(axis=0, keepdims=True).astype(np.float32), format="flt", layout="mono"
    )
    whole.sample_rate = rate_in
    whole.time_base = Fraction(1, rate_in)
    whole.pts = 0
    r = av.AudioResampler(format="flt", layout="mono", rate=rate_out)
    once = np.concatenate([f.to_ndarray().reshape(-1) for f in r.resample(whole) + r.resample(None)])
    assert abs(len(chunked) - 5 * rate_out) <= 2
    n = min(len(chunked), len(once))
    np.testing.assert_allclose(chunked[:n], once[:n], atol=1e-4)


def test_a_rate_change_midway_is_resampled_from_each_rate() -> None:
    """Chained streams change rate: 2 s at 44.1 kHz then 2 s at 22.05 kHz give 4 s at 8 kHz with
    the tone kept (its spectrum peaks at 600 Hz in both halves)."""
    m = MonoResampler(8000)
    out: list[np.ndarray] = []
    for rate in (44100, 22050):
        t = np.arange(rate * 2) / rate
        tone = 0.5 * np.sin(2 * np.pi * 600 * t)[None, :]
        for start in range(0, tone.shape[1], 1024):
            out += m.push(_frame(tone[:, start : start + 1024], "s16", False, rate))
    out += m.flush()
    x = np.concatenate(out)
    assert abs(len(x) - 32000) <= 4
    for half in (x[1000:15000], x[17000:31000]):
        spectrum = np.abs(np.fft.rfft(half * np.hanning(len(half))))
        assert abs(np.argmax(spectrum) * 8000 / len(half) - 600) < 2
        assert 0.3 < np.sqrt(2 * np.mean(half**2)) < 0.6  # the tone's amplitude, 0.5


def test_the_engine_rate_passes_through_unfiltered() -> None:
    x = np.linspace(-0.5, 0.5, 9000)[None, :]
    m = MonoResampler(8000)
    out = m.push(_frame(x, "flt", False, 8000)) + m.flush()
    np.testing.assert_array_equal(np.concatenate(out), x[0].astype(np.float32))


def test_a_huge_claimed_rate_is_resampled_in_bounded_chunks() -> None:
    """A file may claim any rate: the mix-down never holds more than MAX_CHUNK_SAMPLES."""
    m = MonoResampler(8000)
    held = []
    out: list[np.ndarray] = []
    for _ in range(40):
        out += m.push(_frame(np.full((1, 16384), 0.25), "flt", False, 96_000_000))
        held.append(m._pending_n)
    out += m.flush()
    assert max(held) <= MAX_CHUNK_SAMPLES
    assert abs(sum(len(o) for o in out) - 40 * 16384 * 8000 / 96_000_000) <= 2
