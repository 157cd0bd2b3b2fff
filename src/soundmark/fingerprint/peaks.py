"""Spectral peak picking: local maxima that stand out of their neighbourhood."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter1d

from soundmark.fingerprint.params import FingerprintParams


def find_peaks(spec: np.ndarray, params: FingerprintParams, peaks_per_second: float) -> np.ndarray:
    """Peaks of a log spectrogram (frames × bins, dB).

    A peak is the maximum of its (±time_radius, ±freq_radius) neighbourhood and stands at least
    ``min_prominence_db`` above the local mean across frequency. Per one-second block only the
    ``peaks_per_second`` most prominent peaks are kept, so density does not depend on loudness
    or on how busy the music is.

    Returns int32 array (n, 2) of (frame, bin) sorted by frame then bin; bins are relative to
    the band start (see spectrogram.band_bins).
    """
    if spec.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int32)
    size = (2 * params.peak_time_radius + 1, 2 * params.peak_freq_radius + 1)
    local_max = maximum_filter(spec, size=size, mode="nearest")
    background = uniform_filter1d(spec, params.background_freq_bins, axis=1, mode="nearest")
    prominence = spec - background
    # Frames quieter than 70 dB below the loudest carry only encoder noise or dither.
    floor = float(spec.max()) - 70.0
    is_peak = (spec == local_max) & (prominence >= params.min_prominence_db) & (spec > floor)
    t, f = np.nonzero(is_peak)
    if len(t) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    # Rank by a mix of loudness and prominence: loud peaks survive additive noise, prominent
    # ones survive equalisation; `peak_loudness_weight` sets the mix (0 = prominence only).
    w = params.peak_loudness_weight
    strength = prominence[t, f] + w * (spec[t, f] - floor)
    frames_per_block = max(1, round(1.0 / params.frame_seconds))
    block = t // frames_per_block
    # Rank peaks inside each block by prominence, keep the strongest.
    order = np.lexsort((-strength, block))
    block_sorted = block[order]
    starts = np.searchsorted(block_sorted, block_sorted, side="left")
    rank = np.arange(len(order)) - starts
    keep_n = max(1, round(peaks_per_second))
    kept = order[rank < keep_n]
    out = np.stack([t[kept], f[kept]], axis=1).astype(np.int32)
    return out[np.lexsort((out[:, 1], out[:, 0]))]
