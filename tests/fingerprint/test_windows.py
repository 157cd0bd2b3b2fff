"""The one window driver: a whole clip's window print is ``query_fingerprint``; a chunk cuts windows."""

from __future__ import annotations

import numpy as np

from soundmark.demo import compose_piece
from soundmark.fingerprint.extract import query_fingerprint
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks
from soundmark.fingerprint.spectrogram import log_spectrogram
from soundmark.fingerprint.windows import PeakWindows, window_print

P = FingerprintParams()
SR = P.sample_rate


def test_window_print_of_a_whole_clip_is_the_query_fingerprint() -> None:
    x = 0.3 * compose_piece(21, 10.0, SR)
    want = query_fingerprint(x, P)
    spec = log_spectrogram(x, P)
    got = window_print(find_peaks(spec, P, P.query_peaks_per_second), 0, len(spec), P)
    assert got.frames == want.frames
    np.testing.assert_array_equal(got.peaks, want.peaks)
    assert len(got.warps) == len(P.warp_grid) and sum(len(w.hashes) for w in got.warps) > 5000
    for a, b in zip(got.warps, want.warps, strict=True):
        assert (a.time_rate, a.freq_rate) == (b.time_rate, b.freq_rate)
        np.testing.assert_array_equal(a.hashes, b.hashes)
        np.testing.assert_array_equal(a.times, b.times)


def test_window_print_rebases_a_span_of_absolute_frames() -> None:
    x = 0.3 * compose_piece(22, 20.0, SR)
    peaks = find_peaks(log_spectrogram(x, P), P, P.query_peaks_per_second)
    f0, f1 = 200, 450
    inside = peaks[(peaks[:, 0] >= f0) & (peaks[:, 0] < f1)]
    shifted = peaks.copy()
    shifted[:, 0] += 1000  # the same span later in a stream gives the same print
    a, b = window_print(peaks, f0, f1, P), window_print(shifted, f0 + 1000, f1 + 1000, P)
    assert a.frames == f1 - f0 and a.peaks[:, 0].min() >= 0 and a.peaks[:, 0].max() < f1 - f0
    np.testing.assert_array_equal(a.peaks[:, 0] + f0, inside[:, 0])
    np.testing.assert_array_equal(a.peaks, b.peaks)
    for wa, wb in zip(a.warps, b.warps, strict=True):
        np.testing.assert_array_equal(wa.hashes, wb.hashes)


def test_peak_windows_cut_hashes_anchored_in_the_window() -> None:
    x = 0.3 * compose_piece(23, 30.0, SR)
    peaks = find_peaks(log_spectrogram(x, P), P, P.query_peaks_per_second)
    cut = PeakWindows(peaks, P)
    whole = cut.window(0, int(peaks[-1, 0]) + 1)
    a, b = cut.window(100, 400), cut.window(400, 700)
    assert a.frames == b.frames == 300
    assert len(a.peaks) + len(b.peaks) == int(np.sum((peaks[:, 0] >= 100) & (peaks[:, 0] < 700)))
    for k, (time_rate, _) in enumerate(P.warp_grid):
        wa, wb, ww = a.warps[k], b.warps[k], whole.warps[k]
        # Two adjacent windows share no hash and together hold the whole print's hashes of their span.
        anchor = np.rint(ww.times / time_rate)
        span = (anchor >= 100) & (anchor < 700)
        assert len(wa.hashes) + len(wb.hashes) == int(span.sum()) > 1000
        # Times are re-based to each window's first frame, on the reference clock.
        assert set((wb.times + round(400 * time_rate)).tolist()) <= set(ww.times[span].tolist())
