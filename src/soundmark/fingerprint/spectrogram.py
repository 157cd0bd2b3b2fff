"""Short-time log-power spectrogram."""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from soundmark.fingerprint.params import FingerprintParams


def band_bins(params: FingerprintParams) -> tuple[int, int]:
    """FFT bin range [lo, hi) covering fmin_hz..fmax_hz."""
    hz_per_bin = params.sample_rate / params.n_fft
    lo = max(1, int(np.floor(params.fmin_hz / hz_per_bin)))
    hi = min(params.n_fft // 2 + 1, int(np.ceil(params.fmax_hz / hz_per_bin)) + 1)
    return lo, hi


def log_spectrogram(samples: np.ndarray, params: FingerprintParams) -> np.ndarray:
    """Log power (dB) of ``samples`` (mono float32 at params.sample_rate).

    Returns float32 of shape (frames, bins) restricted to the peak band; frame k starts at sample
    k*hop. Fewer than n_fft samples give zero frames.
    """
    x = np.asarray(samples, dtype=np.float32)
    if len(x) < params.n_fft:
        lo, hi = band_bins(params)
        return np.zeros((0, hi - lo), dtype=np.float32)
    frames = sliding_window_view(x, params.n_fft)[:: params.hop]
    window = np.hanning(params.n_fft).astype(np.float32)
    lo, hi = band_bins(params)
    out = np.empty((len(frames), hi - lo), dtype=np.float32)
    step = 4096  # frames per FFT batch keeps the complex intermediate small
    for start in range(0, len(frames), step):
        spec = scipy.fft.rfft(frames[start : start + step] * window, axis=1)[:, lo:hi]
        power = spec.real**2 + spec.imag**2
        out[start : start + step] = 10.0 * np.log10(power + 1e-10)
    return out
