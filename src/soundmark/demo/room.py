"""A phone recording in a room: reverb, a 100 Hz high-pass, babble and pink noise at a chosen SNR.

Used to render the demo clip and by tests that need "over the air" audio.
"""

from __future__ import annotations

import numpy as np
import scipy.signal

from soundmark.demo.compose import PEAK


def _room_impulse(rng: np.random.Generator, sr: int, rt60: float) -> np.ndarray:
    """Direct path, a few early reflections, then exponentially decaying diffuse noise."""
    if rt60 <= 0:
        return np.ones(1)
    length = int(min(1.5 * rt60, 3.0) * sr) + 1
    t = np.arange(length) / sr
    h = np.zeros(length)
    h[0] = 1.0
    for _ in range(int(rng.integers(4, 8))):
        k = int(rng.uniform(0.002, 0.03) * sr)
        if k < length:
            h[k] += rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.6)
    tail = rng.standard_normal(length) * 10 ** (-3 * t / rt60)  # -60 dB at rt60
    tail *= np.clip((t - 0.005) / 0.01, 0, 1)  # the diffuse field builds up after the direct sound
    lp = scipy.signal.butter(1, min(5000.0, 0.45 * sr), "lowpass", fs=sr, output="sos")
    tail = scipy.signal.sosfilt(lp, tail)  # air and walls absorb highs
    tail *= np.sqrt(0.7 / max(float(np.sum(tail**2)), 1e-12))  # reverberant energy ≈ 0.7 × direct
    return h + tail


def _syllables(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A talker's loudness: syllables at 3–6 Hz with the odd pause."""
    rate = rng.uniform(3.0, 6.0)
    knots = int(n / sr * rate) + 2
    level = rng.uniform(0.0, 1.0, knots) ** 2 * (rng.random(knots) > 0.2)
    return np.interp(np.arange(n) / sr * rate, np.arange(knots), level)


def _babble(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Several distant talkers: buzz and hiss through formant resonators, syllable-modulated."""
    out = np.zeros(n)
    nyq = 0.45 * sr
    for _ in range(int(rng.integers(4, 8))):
        f0 = rng.uniform(90, 240) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * np.arange(n) / sr))
        phase = np.cumsum(f0) / sr
        source = 0.7 * (2 * (phase - np.floor(phase)) - 1) + 0.5 * rng.standard_normal(n)
        voice = np.zeros(n)
        for lo, hi, bw in ((300, 900, 120), (900, 2400, 180), (2300, 3500, 250)):
            fc = min(rng.uniform(lo, hi), nyq - bw)
            sos = scipy.signal.butter(1, [fc - bw / 2, fc + bw / 2], "bandpass", fs=sr, output="sos")
            voice += scipy.signal.sosfilt(sos, source) * rng.uniform(0.4, 1.0)
        voice *= _syllables(rng, n, sr)
        out += voice / max(float(np.sqrt(np.mean(voice**2))), 1e-12)
    return out


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=float)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


def _unit_power(x: np.ndarray) -> np.ndarray:
    p = float(np.mean(x**2))
    return x / np.sqrt(p) if p > 0 else x


def over_the_air_parts(
    samples: np.ndarray, sample_rate: int, seed: int, snr_db: float = 5.0, rt60: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """The (reverberant music, noise) whose sum is ``over_the_air``'s output, already scaled.

    Kept separate so a test can measure the SNR exactly instead of estimating it from the mix.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    sr = int(sample_rate)
    if n == 0:
        return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
    rng = np.random.default_rng((int(seed), 0x0A12))  # a stream of its own, apart from compose's
    wet = scipy.signal.fftconvolve(x, _room_impulse(rng, sr, rt60))[:n]
    noise = 0.75 * _unit_power(_babble(rng, n, sr)) + 0.45 * _unit_power(_pink(rng, n))
    # The phone's high-pass applies to everything its microphone hears.
    hp = scipy.signal.butter(2, 100.0, "highpass", fs=sr, output="sos")
    wet = scipy.signal.sosfilt(hp, wet)
    noise = scipy.signal.sosfilt(hp, noise)
    p_sig = float(np.mean(wet**2))
    noise *= np.sqrt(p_sig / 10 ** (snr_db / 10) / float(np.mean(noise**2)))
    m = float(np.max(np.abs(wet + noise)))
    gain = PEAK / m if m > 0 else 0.0
    return (wet * gain).astype(np.float32), (noise * gain).astype(np.float32)


def over_the_air(
    samples: np.ndarray, sample_rate: int, seed: int, snr_db: float = 5.0, rt60: float = 0.5
) -> np.ndarray:
    """``samples`` as a phone would record them across a noisy room (reverb, 100 Hz HPF, babble)."""
    wet, noise = over_the_air_parts(samples, sample_rate, seed, snr_db, rt60)
    return wet + noise


# --------------------------------------------------------------------------------------------------
# Files
