"""The fingerprint stage as one call: samples → peaks and hashes, for indexing or querying."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks
from soundmark.fingerprint.spectrogram import log_spectrogram


@dataclass(frozen=True)
class Fingerprint:
    """Peaks and hashes of a reference track."""

    peaks: np.ndarray  # int32 (n, 2): frame, band-relative bin; sorted by frame
    hashes: np.ndarray  # uint32
    times: np.ndarray  # int32 anchor frames


@dataclass(frozen=True)
class QueryWarp:
    """Query hashes under one (time rate, frequency rate) hypothesis.

    ``times`` are anchor frames already mapped to reference time (t * time_rate), so a match
    votes on ``ref_time - times`` whatever the warp.
    """

    hashes: np.ndarray  # uint32
    times: np.ndarray  # int32
    time_rate: float
    freq_rate: float


@dataclass(frozen=True)
class QueryPrint:
    peaks: np.ndarray  # int32 (n, 2) at query density
    frames: int  # length of the query in frames
    warps: list[QueryWarp]


def fingerprint_samples(samples: np.ndarray, params: FingerprintParams) -> Fingerprint:
    """Reference fingerprint of mono float32 samples at params.sample_rate."""
    peaks = find_peaks(log_spectrogram(samples, params), params, params.ref_peaks_per_second)
    h, t = pair_hashes(peaks[:, 0], peaks[:, 1], params, params.fanout)
    return Fingerprint(peaks, h, t)


def warp_peaks(peaks: np.ndarray, time_rate: float, freq_rate: float, lo: int) -> tuple[np.ndarray, np.ndarray]:
    """Query peaks mapped to reference coordinates (float frames, float band bins).

    Frequency scaling acts on absolute frequency, so the band offset ``lo`` is added first.
    """
    t = peaks[:, 0] * time_rate
    f = (peaks[:, 1] + lo) / freq_rate - lo
    return t, f


def query_fingerprint(samples: np.ndarray, params: FingerprintParams) -> QueryPrint:
    """Query peaks once, hashed under every warp of params.warp_grid: the window driver's print
    (fingerprint/windows.py) of the whole clip, as for a scan's or a live stream's window."""
    from soundmark.fingerprint.windows import window_print  # windows.py builds on this module's types

    spec = log_spectrogram(samples, params)
    peaks = find_peaks(spec, params, params.query_peaks_per_second, compiled=True)
    return window_print(peaks, 0, spec.shape[0], params)
