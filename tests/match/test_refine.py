"""refine_warp: the speed, tempo or pitch a match reports, estimated between the grid's points.

The query's peaks are a reference's own peaks moved by an exact warp (and thinned, as noise
thins them), so the true rate is known to the last digit and the estimate is judged alone.
"""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins
from soundmark.match.verify import refine_warp

PARAMS = FingerprintParams()
LO = band_bins(PARAMS)[0]
FRAMES_PER_S = PARAMS.sample_rate / PARAMS.hop


def reference(seed: int, seconds: float = 60.0) -> np.ndarray:
    """A stored peak list: (frame, band bin) rows sorted by frame, ~22 peaks a second."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 22)
    frames = np.sort(rng.integers(0, int(seconds * FRAMES_PER_S), n))
    bins = rng.integers(0, band_bins(PARAMS)[1] - LO, n)
    return np.stack([frames, bins], axis=1).astype(np.int32)


def warped_query(ref: np.ndarray, offset: int, seconds: float, time_rate: float, freq_rate: float,
                 seed: int) -> np.ndarray:  # fmt: skip
    """The peaks a query of ``seconds`` played from ``offset`` under the warp would show: the
    reference time of a query frame t is t·time_rate + offset, its absolute frequency f / freq_rate.
    As in a noisy room, half the peaks are lost, a third of those left move a frame, and as many
    peaks of the noise's own come in."""
    rng = np.random.default_rng(seed)
    span = seconds * FRAMES_PER_S * time_rate
    sel = ref[(ref[:, 0] >= offset) & (ref[:, 0] < offset + span)].astype(np.float64)
    sel = sel[rng.random(len(sel)) < 0.5]
    t = np.rint((sel[:, 0] - offset) / time_rate + rng.choice([-1, 0, 0, 0, 0, 1], len(sel)))
    f = np.rint((sel[:, 1] + LO) * freq_rate - LO)
    noise_t = rng.integers(0, int(seconds * FRAMES_PER_S), len(sel))
    noise_f = rng.integers(0, band_bins(PARAMS)[1] - LO, len(sel))
    q = np.stack([np.concatenate([t, noise_t]), np.concatenate([f, noise_f])], axis=1).astype(np.int32)
    q = q[(q[:, 0] >= 0) & (q[:, 1] >= 0)]
    return q[np.argsort(q[:, 0], kind="stable")]


def nearest_point(time_rate: float, freq_rate: float) -> tuple[float, float]:
    return min(PARAMS.wide_grid, key=lambda p: abs(p[0] - time_rate) + abs(p[1] - freq_rate))


# The bound: speed, tempo and pitch reported within 0.5 %. A time stretch of a 3 s query
# has too few agreeing peaks for that under this much noise (its slope's standard error is about
# 0.4 %): there the bound is 1 %.
TIME_TOLERANCE = {3.0: 0.01, 5.0: 0.005, 10.0: 0.005}
CASES = [
    # (time rate, frequency rate, seconds): tempo, speed and pitch between the wide grid's points
    (1.037, 1.0, 5.0),
    (0.931, 1.0, 10.0),
    (1.082, 1.0, 3.0),
    (1.021, 1.021, 5.0),
    (0.943, 0.943, 3.0),
    (1.0, 1.067, 5.0),
    (1.0, 0.9123, 10.0),
]


@pytest.mark.parametrize("time_rate,freq_rate,seconds", CASES)
def test_the_reported_rate_is_within_half_a_percent(time_rate: float, freq_rate: float, seconds: float) -> None:
    for seed in range(4):
        ref = reference(seed)
        offset = 200 + 37 * seed
        q = warped_query(ref, offset, seconds, time_rate, freq_rate, seed)
        a0, b0 = nearest_point(time_rate, freq_rate)
        # The vote pins the alignment around the query's middle, under the point's own rate.
        mid = float(np.median(q[:, 0]))
        start = offset + round(mid * (time_rate - a0))
        r = refine_warp(q, ref, a0, b0, start, LO, PARAMS.wide_grid)
        assert r.time_rate == pytest.approx(time_rate, rel=TIME_TOLERANCE[seconds]), (seed, r)
        assert r.freq_rate == pytest.approx(freq_rate, rel=0.005), (seed, r)


def test_an_unwarped_query_reports_no_change() -> None:
    ref = reference(7)
    q = warped_query(ref, 500, 5.0, 1.0, 1.0, 7)
    r = refine_warp(q, ref, 1.0, 1.0, 500, LO, PARAMS.wide_grid)
    assert r.time_rate == 1.0
    assert r.freq_rate == pytest.approx(1.0, abs=0.002)
