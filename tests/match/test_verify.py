"""Peak verification and its chance-level math, on synthetic peaks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import poisson

from soundmark.match.verify import (
    NULL_SHIFTS,
    Verification,
    poisson_tail_log10,
    shared_peaks,
    verify_alignment,
)

RNG_SEED = 7


def _exact_log10_tail(k: int, lam: float) -> float:
    """log10 P(X >= k) from scipy: P(X >= k) = sf(k - 1)."""
    return float(poisson.logsf(k - 1, lam)) / math.log(10.0)


def _random_peaks(rng: np.random.Generator, frames: int, per_frame: int, bins: int) -> np.ndarray:
    """int32 (n, 2) peaks (frame, bin), sorted by frame, ``per_frame`` at random bins of every frame."""
    t = np.repeat(np.arange(frames), per_frame)
    f = rng.integers(0, bins, size=len(t))
    return np.stack([t, f], axis=1).astype(np.int32)


# poisson_tail_log10 ----------------------------------------------------------------------------

_GRID_ALL = [
    (lam, k)
    for lam in (0.01, 0.5, 1.0, 3.0, 10.0, 50.0, 200.0, 1_000.0, 10_000.0, 100_000.0)
    for k in sorted(
        {int(lam) + 1, int(lam) + 2, int(1.2 * lam) + 1, int(1.5 * lam) + 1, int(2 * lam) + 3, int(5 * lam) + 5}
        | {int(lam + m * math.sqrt(lam)) + 1 for m in (1, 3, 6, 10)}
    )
]
# Where scipy's log tail is finite (it underflows to -inf below ≈ 1e-308; see the test below).
_GRID = [(lam, k) for lam, k in _GRID_ALL if _exact_log10_tail(k, lam) > -300]


@pytest.mark.parametrize(("lam", "k"), _GRID)
def test_tail_is_a_tight_upper_bound_of_the_exact_poisson_tail(lam: float, k: int) -> None:
    exact = _exact_log10_tail(k, lam)
    approx = poisson_tail_log10(k, lam)
    assert math.isfinite(approx)
    # A geometric bound on the tail from P(X = k): never below the exact tail (the score errs on
    # the side of caution) ...
    assert approx >= exact - 1e-9
    # ... and above it by at most log10(1 / (1 - λ/(k+1))), since the tail is at least P(X = k).
    r = min(lam / (k + 1), 0.999999)
    assert approx - exact <= -math.log10(1.0 - r) + 1e-9


@pytest.mark.parametrize(("lam", "k"), [(0.5, 26), (3.0, 31), (10.0, 101), (200.0, 601), (1_000.0, 2_001)])
def test_tail_matches_scipy_in_the_far_tail(lam: float, k: int) -> None:
    """Where it matters (k far above λ) the approximation is exact to a few thousandths of a decade."""
    assert poisson_tail_log10(k, lam) == pytest.approx(_exact_log10_tail(k, lam), abs=2e-3)


@pytest.mark.parametrize(("lam", "k"), [(10_000.0, 11_001), (100_000.0, 101_001), (100_000.0, 110_001)])
def test_tail_matches_scipy_for_large_lambda(lam: float, k: int) -> None:
    assert poisson_tail_log10(k, lam) == pytest.approx(_exact_log10_tail(k, lam), abs=0.05)


@pytest.mark.parametrize(("lam", "k"), [(10.0, 501), (1_000.0, 10_001), (100_000.0, 1_000_001), (10.0, 10**6)])
def test_tail_stays_finite_where_scipy_underflows(lam: float, k: int) -> None:
    assert _exact_log10_tail(k, lam) == -math.inf
    v = poisson_tail_log10(k, lam)
    assert math.isfinite(v)
    assert v < -300
    # The log pmf alone: log10 of λ^k e^-λ / k!, which the tail exceeds by less than one decade here.
    log10_pmf = (k * math.log(lam) - lam - math.lgamma(k + 1)) / math.log(10.0)
    assert log10_pmf <= v < log10_pmf + 1.0


@pytest.mark.parametrize("lam", [0.0, 0.2, 1.0, 7.5, 40.0, 40.5, 1e4])
def test_tail_at_or_below_the_mean_is_certainty(lam: float) -> None:
    for k in range(0, int(lam) + 1):
        assert poisson_tail_log10(k, lam) == 0.0


def test_tail_is_never_positive_and_zero_rate_is_clamped() -> None:
    # λ = 0 would give log(0): it is clamped to 1e-12, so one hit is p = 1e-12, not -inf.
    assert poisson_tail_log10(1, 0.0) == pytest.approx(-12.0, abs=1e-6)
    assert math.isfinite(poisson_tail_log10(50, 0.0))
    for lam in (0.5, 5.0, 500.0):
        for k in (0, 1, int(lam) + 1, int(3 * lam) + 1):
            assert poisson_tail_log10(k, lam) <= 0.0


@pytest.mark.parametrize("lam", [0.01, 0.5, 2.5, 7.0, 123.4, 999.9, 4e4])
def test_tail_falls_monotonically_in_k(lam: float) -> None:
    ks = np.unique(np.concatenate([np.arange(0, int(lam) + 60), (lam * np.geomspace(1, 200, 200)).astype(int)]))
    vals = np.array([poisson_tail_log10(int(k), lam) for k in ks])
    assert np.all(np.diff(vals) <= 1e-12)
    assert vals[-1] < vals[0]


@pytest.mark.parametrize("k", [1, 5, 50, 500, 50_000])
def test_tail_rises_monotonically_in_lambda(k: int) -> None:
    lams = np.geomspace(0.01, 2.0 * k, 300)
    vals = np.array([poisson_tail_log10(k, float(lam)) for lam in lams])
    assert np.all(np.diff(vals) >= -1e-12)
    assert vals[-1] == 0.0


# verify_alignment ------------------------------------------------------------------------------


@pytest.fixture()
def reference() -> np.ndarray:
    """3000 frames (≈ 96 s) of two random peaks per frame in 480 bins."""
    return _random_peaks(np.random.default_rng(RNG_SEED), 3000, 2, 480)


def _excerpt(ref: np.ndarray, start: int, frames: int) -> np.ndarray:
    sel = (ref[:, 0] >= start) & (ref[:, 0] < start + frames)
    out = ref[sel].copy()
    out[:, 0] -= start
    return out


def _lam(v: Verification) -> float:
    """The rate the score is computed under: the null mean widened by its overdispersion."""
    return max(v.null_mean + max(0.0, v.null_sd - math.sqrt(max(v.null_mean, 1e-9))), 0.5)


def test_verification_of_no_peaks_is_all_zero(reference: np.ndarray) -> None:
    empty = np.zeros((0, 2), dtype=np.int32)
    assert verify_alignment(empty, reference, 1.0, 1.0, 0, 19) == Verification(0, 0, 0.0, 0.0, 0.0)
    assert verify_alignment(reference[:50], empty, 1.0, 1.0, 0, 19) == Verification(0, 0, 0.0, 0.0, 0.0)


def test_true_alignment_lands_every_peak_and_scores_far_above_chance(reference: np.ndarray) -> None:
    query = _excerpt(reference, 1000, 250)
    v = verify_alignment(query, reference, 1.0, 1.0, 1000, 19)
    assert v.peaks == len(query) == 500
    assert v.hits == v.peaks
    # Chance: 9 tolerance cells × 2 peaks of 480 bins per frame ≈ 3.7 % of the query's peaks.
    assert 0.01 * v.peaks < v.null_mean < 0.08 * v.peaks
    assert v.score > 100
    # The score convention: −log10 of the Poisson tail at the (overdispersion-widened) null mean.
    assert v.score == pytest.approx(-poisson_tail_log10(v.hits, _lam(v)))


def test_wrong_offset_scores_at_chance(reference: np.ndarray) -> None:
    query = _excerpt(reference, 1000, 250)
    v = verify_alignment(query, reference, 1.0, 1.0, 2000, 19)
    assert v.peaks == 500
    assert v.hits < 0.1 * v.peaks
    assert v.score < 3.0
    assert v.score >= 0.0
    assert v.score == pytest.approx(-poisson_tail_log10(v.hits, _lam(v)))


def test_score_grows_with_the_share_of_landed_peaks(reference: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    query = _excerpt(reference, 1200, 250)
    scores = []
    for share in (0.1, 0.3, 0.6, 1.0):
        q = query.copy()
        lost = rng.random(len(q)) > share
        q[lost, 1] = rng.integers(480, 900, size=int(lost.sum()))  # bins no reference peak uses
        scores.append(verify_alignment(q, reference, 1.0, 1.0, 1200, 19).score)
    assert scores == sorted(scores)
    assert scores[0] < scores[-1]


def test_tolerance_absorbs_one_frame_and_one_bin_of_jitter(reference: np.ndarray) -> None:
    query = _excerpt(reference, 500, 200)
    q = query.copy()
    q[:, 0] += 1  # every peak one frame late, one bin high
    q[:, 1] += 1
    loose = verify_alignment(q, reference, 1.0, 1.0, 500, 19)
    strict = verify_alignment(q, reference, 1.0, 1.0, 500, 19, tol_t=0, tol_f=0)
    assert loose.hits == loose.peaks
    assert strict.hits < 0.2 * strict.peaks


def test_the_warp_maps_query_peaks_into_the_reference() -> None:
    rng = np.random.default_rng(11)
    lo = 19
    background = _random_peaks(rng, 3000, 2, 480)
    # The query plays 2× fast and an octave high: a query peak (t, f) is the reference's
    # (2t, (f + lo) / 0.5 − lo) — warp_peaks' convention.
    qt = np.sort(rng.integers(0, 120, size=300))
    qf = rng.integers(0, 200, size=300)
    query = np.stack([qt, qf], axis=1).astype(np.int32)
    planted = np.stack([1000 + 2 * qt, 2 * (qf + lo) - lo], axis=1)
    ref = np.concatenate([background, planted]).astype(np.int32)
    ref = ref[np.argsort(ref[:, 0], kind="stable")]
    warped = verify_alignment(query, ref, 2.0, 0.5, 1000, lo)
    plain = verify_alignment(query, ref, 1.0, 1.0, 1000, lo)
    assert warped.hits == warped.peaks == 300
    assert warped.score > 50
    assert plain.score < warped.score / 10


def test_peaks_warped_out_of_the_stored_band_are_not_counted(reference: np.ndarray) -> None:
    query = _excerpt(reference, 800, 200)
    # Freq rate 0.25 sends bins f to 4(f + 19) − 19: those above ≈ 237 leave the 1024-bin span.
    v = verify_alignment(query, reference, 1.0, 0.25, 800, 19)
    kept = int(np.count_nonzero(np.rint(4.0 * (query[:, 1] + 19) - 19) < 1024))
    assert 0 < kept < len(query)
    assert v.peaks == kept


def test_short_track_wraps_its_null_shifts() -> None:
    """A reference shorter than the null shifts still gets a chance level (shifts wrap around it)."""
    ref = _random_peaks(np.random.default_rng(5), 150, 2, 480)
    assert ref[-1, 0] + 1 < 2 * np.abs(NULL_SHIFTS).max()  # most shifts leave the track
    query = _excerpt(ref, 20, 100)
    v = verify_alignment(query, ref, 1.0, 1.0, 20, 19)
    assert v.hits == v.peaks == len(query)
    assert v.null_mean < 0.2 * v.peaks
    assert v.score > 20


def test_query_partly_past_the_reference_end_counts_only_peaks_inside(reference: np.ndarray) -> None:
    query = _excerpt(reference, 2800, 200)
    v = verify_alignment(query, reference, 1.0, 1.0, 2900, 19)  # the last 100 frames fall off the end
    inside = int(np.count_nonzero(query[:, 0] + 2900 <= reference[-1, 0]))
    assert v.peaks == inside
    assert 0 < inside < len(query)


# shared_peaks ----------------------------------------------------------------------------------


def test_shared_peaks_of_the_same_audio_elsewhere_is_one(reference: np.ndarray) -> None:
    other = reference.copy()
    other[:, 0] += 500  # the same recording, stored with 500 frames of lead-in
    assert shared_peaks(reference, 100, other, 600, 300) == 1.0
    # One frame and one bin of jitter is still the same audio.
    jittered = other.copy()
    jittered[::2, 0] += 1
    jittered[1::2, 1] -= 1
    assert shared_peaks(reference, 100, jittered, 600, 300) == 1.0


def test_shared_peaks_of_unrelated_audio_is_chance(reference: np.ndarray) -> None:
    other = _random_peaks(np.random.default_rng(99), 3000, 2, 480)
    share = shared_peaks(reference, 100, other, 100, 300)
    assert 0.0 < share < 0.1
    # The wrong place of the same audio is chance too.
    assert shared_peaks(reference, 100, reference, 900, 300) < 0.1


def test_shared_peaks_of_nothing_is_zero(reference: np.ndarray) -> None:
    empty = np.zeros((0, 2), dtype=np.int32)
    assert shared_peaks(empty, 0, reference, 0, 100) == 0.0
    assert shared_peaks(reference, 0, empty, 0, 100) == 0.0
    assert shared_peaks(reference, 5000, reference, 5000, 100) == 0.0  # A has no peaks there
