"""Spectral peak picking: local maxima that stand out of their neighbourhood.

Picking runs in two steps so that a whole array and a stream of blocks give the same peaks:
``peak_candidates`` needs only ``peak_time_radius`` frames of context around the rows it judges,
and ``select_peaks`` applies what depends on the whole recording (the floor below its loudest
frame) and the per-second density cap. ``find_peaks`` chains both on one array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter, uniform_filter1d

from soundmark.fingerprint.params import FingerprintParams

FLOOR_BELOW_MAX_DB = 70.0  # frames quieter than this below the loudest carry only encoder noise or dither


@dataclass(frozen=True)
class Candidates:
    """Local maxima that stand ``min_prominence_db`` above their background, in (frame, bin) order."""

    t: np.ndarray  # int64 frames (absolute)
    f: np.ndarray  # int64 band-relative bins
    level: np.ndarray  # float32 dB of the peak
    prominence: np.ndarray  # float32 dB above the local mean across frequency

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        if not parts:
            z = np.zeros(0, dtype=np.int64)
            e = np.zeros(0, dtype=np.float32)
            return Candidates(z, z, e, e)
        return Candidates(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("t", "f", "level", "prominence")))

    def above(self, floor: float) -> Candidates:
        keep = self.level > floor
        return Candidates(self.t[keep], self.f[keep], self.level[keep], self.prominence[keep])


def peak_candidates(spec: np.ndarray, params: FingerprintParams, first: int = 0, stop: int | None = None,
                    frame0: int = 0, *, compiled: bool = False) -> Candidates:  # fmt: skip
    """Candidate peaks of rows ``[first, stop)`` of a log spectrogram (frames × bins, dB).

    The other rows of ``spec`` are context only: a row is judged against ``peak_time_radius``
    rows on either side, the edges of ``spec`` standing for themselves (``nearest``), so rows
    with full context give the same answer whatever block they arrive in. ``frame0`` is the
    absolute frame of ``spec[0]``. ``compiled`` takes the neighbourhood maximum in a compiled
    loop (``peak_kernel``, the same values): for the query path.
    """
    stop = spec.shape[0] if stop is None else stop
    if compiled:
        from soundmark.fingerprint.peak_kernel import max_filter  # numba loads only where asked

        rt, rf = params.peak_time_radius, params.peak_freq_radius
        local_max = max_filter(np.ascontiguousarray(spec, dtype=np.float32), rt, rf, first, stop)
    else:
        size = (2 * params.peak_time_radius + 1, 2 * params.peak_freq_radius + 1)
        local_max = maximum_filter(spec, size=size, mode="nearest")[first:stop]
    rows = spec[first:stop]
    background = uniform_filter1d(rows, params.background_freq_bins, axis=1, mode="nearest")
    prominence = rows - background
    t, f = np.nonzero((rows == local_max) & (prominence >= params.min_prominence_db))
    return Candidates(t + (frame0 + first), f, rows[t, f], prominence[t, f])


def select_peaks(c: Candidates, floor: float, params: FingerprintParams, peaks_per_second: float) -> np.ndarray:
    """Candidates louder than ``floor``, the ``peaks_per_second`` strongest of each one-second block.

    Returns int32 array (n, 2) of (frame, bin) sorted by frame then bin.
    """
    c = c.above(floor)
    t, f = c.t, c.f
    if len(t) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    # Rank by a mix of loudness and prominence: loud peaks survive additive noise, prominent
    # ones survive equalisation; `peak_loudness_weight` sets the mix (0 = prominence only).
    w = params.peak_loudness_weight
    strength = c.prominence + w * (c.level - floor)
    frames_per_block = max(1, round(1.0 / params.frame_seconds))
    block = t // frames_per_block
    # Rank peaks inside each block by strength, keep the strongest.
    order = np.lexsort((-strength, block))
    block_sorted = block[order]
    starts = np.searchsorted(block_sorted, block_sorted, side="left")
    rank = np.arange(len(order)) - starts
    keep_n = max(1, round(peaks_per_second))
    kept = order[rank < keep_n]
    out = np.stack([t[kept], f[kept]], axis=1).astype(np.int32)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def find_peaks(
    spec: np.ndarray, params: FingerprintParams, peaks_per_second: float, *, compiled: bool = False
) -> np.ndarray:
    """Peaks of a log spectrogram (frames × bins, dB).

    A peak is the maximum of its (±time_radius, ±freq_radius) neighbourhood and stands at least
    ``min_prominence_db`` above the local mean across frequency. Per one-second block only the
    ``peaks_per_second`` most prominent peaks are kept, so density does not depend on loudness
    or on how busy the music is.

    Returns int32 array (n, 2) of (frame, bin) sorted by frame then bin; bins are relative to
    the band start (see spectrogram.band_bins). ``compiled``: see ``peak_candidates``.
    """
    if spec.shape[0] == 0:
        return np.zeros((0, 2), dtype=np.int32)
    floor = float(spec.max()) - FLOOR_BELOW_MAX_DB
    return select_peaks(peak_candidates(spec, params, compiled=compiled), floor, params, peaks_per_second)
