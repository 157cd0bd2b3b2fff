"""Query windows over one peak set: the ``QueryPrint`` of a span, hashed under every warp.

The long-recording scan (match/scan.py) takes the peaks of a minute-long chunk and cuts a
window every few seconds; a live stream (fingerprint/query_stream.py) selects the peaks of its
last window at every hop. Both build their query prints here, so the warp hashing and the
re-basing of a window to its first frame exist once:

- ``PeakWindows(peaks, params)`` hashes a peak set once under every warp of ``params.warp_grid``;
  ``window(first, last)`` then cuts the print of frames ``[first, last)``: the peaks there and the
  hashes *anchored* there (their targets may lie past ``last``: the chunk goes on), re-based so
  that frame ``first`` is 0 in query time and ``round(first * time_rate)`` in reference time.
- ``window_print(peaks, first, last, params)`` is the print of the peaks of ``[first, last)``
  alone (pairs stay inside the window): for the peaks of a whole clip it is exactly what
  ``extract.query_fingerprint`` returns (tests/fingerprint/test_windows.py). ``WindowPeaks`` carries such
  a window's peaks to where it is matched (a live stream's window travels to a recognition
  worker as its peaks, a few KB, and is hashed there: hashing is the costliest step left in the
  stream's thread, and the worker processes do not share the server's GIL).

Peaks are int32 (n, 2) arrays of (frame, band-relative bin) sorted by frame; frames are STFT frames
(``params.hop`` samples each).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundmark.fingerprint.extract import QueryPrint, QueryWarp, warp_peaks
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins


@dataclass(frozen=True)
class _WarpHashes:
    """The hashes of one peak set under one warp, anchors on both clocks."""

    hashes: np.ndarray  # uint32
    ref_times: np.ndarray  # int64 anchor frames in reference time (query frame × time_rate, rounded)
    query_times: np.ndarray  # int64 anchor frames back in query time (to select a window's hashes)
    time_rate: float
    freq_rate: float


def _hash_warps(peaks: np.ndarray, params: FingerprintParams, jitter: int) -> list[_WarpHashes]:
    """``peaks`` hashed (``query_fanout``, ``jitter``) under every warp of ``params.warp_grid``."""
    lo = band_bins(params)[0]
    out = []
    for time_rate, freq_rate in params.warp_grid:
        t, f = warp_peaks(peaks, time_rate, freq_rate, lo)
        h, at = pair_hashes(t, f, params, params.query_fanout, jitter, compiled=True)
        ref = at.astype(np.int64)
        out.append(_WarpHashes(h, ref, np.rint(ref / time_rate).astype(np.int64), time_rate, freq_rate))
    return out


class PeakWindows:
    """One peak set hashed once; ``window(first, last)`` cuts the query print of any span of it."""

    def __init__(self, peaks: np.ndarray, params: FingerprintParams, *, jitter: int = 0) -> None:
        self.peaks = peaks
        self.params = params
        self._frames = peaks[:, 0].astype(np.int64)
        self._warps = _hash_warps(peaks, params, jitter)

    def window(self, first: int, last: int) -> QueryPrint:
        """The print of frames ``[first, last)``: its peaks and the hashes anchored in it."""
        i0, i1 = np.searchsorted(self._frames, [first, last])
        peaks = self.peaks[i0:i1].copy()
        peaks[:, 0] -= first
        warps = []
        for w in self._warps:
            sel = (w.query_times >= first) & (w.query_times < last)
            times = (w.ref_times[sel] - round(first * w.time_rate)).astype(np.int32)
            warps.append(QueryWarp(w.hashes[sel], times, w.time_rate, w.freq_rate))
        return QueryPrint(peaks, last - first, warps)


@dataclass(frozen=True)
class WindowPeaks:
    """The peaks of one query window, re-based to its first frame (int32 (n, 2), sorted by frame)."""

    peaks: np.ndarray
    frames: int  # length of the window in frames

    def query_print(self, params: FingerprintParams) -> QueryPrint:
        return window_print(self.peaks, 0, self.frames, params)


def window_print(
    peaks: np.ndarray, first_frame: int, last_frame: int, params: FingerprintParams, *, jitter: int | None = None
) -> QueryPrint:
    """The print of the peaks in frames ``[first_frame, last_frame)`` alone, re-based to ``first_frame``.

    Every pair of the window's peaks is kept (``jitter`` defaults to ``params.query_jitter``, as
    for a query); peaks outside the span are ignored.
    """
    frames = peaks[:, 0]
    i0, i1 = np.searchsorted(frames, [first_frame, last_frame])
    rebased = peaks[i0:i1].copy()
    rebased[:, 0] -= first_frame
    j = params.query_jitter if jitter is None else jitter
    warps = [QueryWarp(w.hashes, w.ref_times.astype(np.int32), w.time_rate, w.freq_rate)
             for w in _hash_warps(rebased, params, j)]  # fmt: skip
    return QueryPrint(rebased, last_frame - first_frame, warps)
