"""Verify a candidate alignment on the raw peaks and turn it into a calibrated confidence.

Hash votes find candidates fast but are a poor confidence: pairs share peaks, so chance votes
come in clumps, and tracks in the same key and style share many hashes. Verification maps every
query peak into the candidate's reference under the candidate's warp and offset and counts how
many land on a stored reference peak. The same count at a set of deliberately wrong offsets
(the same query, the same track, shifted by a few seconds) measures what chance gives for this
very pair of recordings, so the confidence needs no global calibration: it is how far the true
alignment stands above its own null, in −log10 p.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from soundmark.fingerprint.extract import warp_peaks

_LN10 = math.log(10.0)
# The width of verification's frequency axis, and of its peak codes frame * _FREQ_SPAN + bin: a
# power of two above every band bin a peak can have (a bin indexes the peak band of an n_fft-point
# FFT, below n_fft // 2 + 1 ≤ 1024 for every n_fft up to 2046). Query peaks warped past it lie
# outside every reference and are not counted. The index stores peaks its own way.
_FREQ_SPAN = 1 << 10
# Wrong offsets (frames) that sample the chance level: spread over ±(2..12) s.
NULL_SHIFTS = np.array([-373, -311, -257, -199, -151, -113, -79, -61, 61, 79, 113, 151, 199, 257, 311, 373])


@dataclass(frozen=True)
class Verification:
    hits: int  # query peaks landing on a reference peak at the candidate alignment
    peaks: int  # query peaks inside the reference
    null_mean: float  # hits at wrong offsets, on average
    null_sd: float
    score: float  # −log10 of the chance of ``hits`` under the null


def poisson_tail_log10(k: int, lam: float) -> float:
    """log10 P(X >= k) for X ~ Poisson(lam), accurate in the far tail where it matters."""
    if k <= lam:
        return 0.0
    lam = max(lam, 1e-12)
    log_pmf = k * math.log(lam) - lam - math.lgamma(k + 1)
    log_tail = log_pmf - math.log1p(-min(lam / (k + 1), 0.999999))
    return min(0.0, log_tail / _LN10)


def verify_alignment(
    query_peaks: np.ndarray,
    ref_peaks: np.ndarray,
    time_rate: float,
    freq_rate: float,
    offset: int,
    band_lo: int,
    *,
    tol_t: int = 1,
    tol_f: int = 1,
) -> Verification:
    """Count query peaks that meet reference peaks at ``offset`` (frames) under the warp."""
    if len(query_peaks) == 0 or len(ref_peaks) == 0:
        return Verification(0, 0, 0.0, 0.0, 0.0)
    t, f = warp_peaks(query_peaks, time_rate, freq_rate, band_lo)
    ti = np.rint(t).astype(np.int64)
    fi = np.rint(f).astype(np.int64)
    keep = (fi >= 0) & (fi < _FREQ_SPAN)
    ti, fi = ti[keep], fi[keep]
    last = int(ref_peaks[-1, 0])
    # A dense grid of the reference around every offset that will be tried, each stored peak
    # widened by the tolerance: a count is then one gather.
    reach = int(np.abs(NULL_SHIFTS).max()) + tol_t + 1
    g0 = max(0, offset + int(ti.min(initial=0)) - reach)
    g1 = min(last, offset + int(ti.max(initial=0)) + reach) + 1
    lo_i, hi_i = np.searchsorted(ref_peaks[:, 0], [g0 - tol_t, g1 + tol_t])
    window = ref_peaks[lo_i:hi_i].astype(np.int64)
    grid = np.zeros((max(g1 - g0, 1), _FREQ_SPAN), dtype=bool)
    for dt in range(-tol_t, tol_t + 1):
        rows = window[:, 0] - g0 + dt
        ok = (rows >= 0) & (rows < grid.shape[0])
        for df in range(-tol_f, tol_f + 1):
            cols = np.clip(window[ok, 1] + df, 0, _FREQ_SPAN - 1)
            grid[rows[ok], cols] = True

    kernel = _kernel()
    # The peaks that meet a stored one at the offset itself and at each wrong one, in one call.
    shifts = offset + np.concatenate(([0], NULL_SHIFTS)).astype(np.int64)
    met, inside = kernel.shift_counts(ti, fi, grid, g0, g1, last, shifts)
    hits, n = int(met[0]), int(inside[0])
    null = []
    for h, m in zip(met[1:].tolist(), inside[1:].tolist(), strict=True):
        if m >= 0.5 * max(n, 1):  # only shifts that still overlap the track enough
            null.append(h * n / m if m else 0.0)
    if len(null) < 4:
        # Short track: wrap the shift around the track instead.
        wrapped = (offset + NULL_SHIFTS[:8].astype(np.int64)) % (last + 1)
        null += [float(h) for h in kernel.shift_counts(ti, fi, grid, g0, g1, last, wrapped)[0].tolist()]
    arr = np.array(null, dtype=np.float64)
    mean = float(arr.mean())
    sd = float(arr.std())
    # Overdispersed music (repeats, shared chords): widen λ by the spread the shifts showed.
    lam = max(mean + max(0.0, sd - math.sqrt(max(mean, 1e-9))), 0.5)
    return Verification(hits, n, mean, sd, -poisson_tail_log10(hits, lam))


# Rates tried around a candidate's warp, along the lines a rate change moves on: a speed change
# (time and frequency together), a pitch shift (frequency alone), a time stretch (time alone).
# The wide grid's frequency points lie 1.5 % apart, so ±0.75 % in 0.25 % steps reaches every
# scale between two; time is matched within a few percent of a point, so its line reaches ±3 %.
REFINE_FREQ_STEPS = np.arange(-3, 4) * 0.0025
REFINE_TIME_STEPS = np.arange(-6, 7) * 0.005
REFINE_MIN_GAIN = 1.03  # a rate off the grid's point is taken when it meets this many times the peaks
FIRST_HEARD_HITS = 3  # the song is heard from its third agreeing query peak on (one or two may be chance)
_OFFSETS = np.arange(-2, 3)  # frames around the candidate's offset, tried at every rate


@dataclass(frozen=True)
class Refined:
    time_rate: float
    freq_rate: float
    first_frame: int  # query frame of the FIRST_HEARD_HITS-th earliest peak that agrees: where the song begins


def _refine_lines(time_rate: float, freq_rate: float) -> list[tuple[float, float]]:
    """The rate pairs to try around a point: along the line(s) its warp lies on."""
    speed = [(time_rate * (1 + e), freq_rate * (1 + e)) for e in REFINE_FREQ_STEPS]
    pitch = [(time_rate, freq_rate * (1 + e)) for e in REFINE_FREQ_STEPS]
    tempo = [(time_rate * (1 + e), freq_rate) for e in REFINE_TIME_STEPS]
    if time_rate == freq_rate == 1.0:
        return speed + pitch + tempo
    if time_rate == freq_rate:
        return speed
    return pitch if time_rate == 1.0 else tempo


def refine_warp(
    query_peaks: np.ndarray,
    ref_peaks: np.ndarray,
    time_rate: float,
    freq_rate: float,
    offset: int,
    band_lo: int,
    points: Sequence[tuple[float, float]] = (),
) -> Refined:
    """The (time rate, frequency rate) near the candidate's warp under which most query peaks meet
    the reference at ``offset`` (±2 frames): the speed and pitch a match reports, finer than the
    query-side grid, and where in the query the agreeing peaks begin. Exact-cell counts (no
    tolerance), so a step of 0.25 % moves high peaks a bin; a rate off the grid's point must meet
    REFINE_MIN_GAIN times its peaks (the counts are noisy)."""
    if len(query_peaks) == 0 or len(ref_peaks) == 0:
        return Refined(time_rate, freq_rate, 0)
    reach = int(np.ceil(query_peaks[:, 0].max(initial=0) * time_rate * 1.04)) + 4
    g0 = max(0, offset - 4 - int(0.12 * reach))
    g1 = offset + reach
    lo_i, hi_i = np.searchsorted(ref_peaks[:, 0], [g0, g1])
    window = ref_peaks[lo_i:hi_i].astype(np.int64)
    grid = np.zeros((max(g1 - g0, 1), _FREQ_SPAN), dtype=bool)
    grid[window[:, 0] - g0, np.clip(window[:, 1], 0, _FREQ_SPAN - 1)] = True

    # The vote pinned the alignment where its votes were, around the query's middle: under
    # another time rate the query's start moves so that the middle stays put.
    mid = float(np.median(query_peaks[:, 0]))

    kernel = _kernel()
    qt = query_peaks[:, 0].astype(np.int64)
    qf = query_peaks[:, 1].astype(np.int64)

    def met(a: float, b: float) -> tuple[np.ndarray, int]:
        """Which query peaks meet a reference peak under (a, b), at the best of the offsets."""
        start = offset + round(mid * (time_rate - a))
        hit, n = kernel.met_at_best_offset(qt, qf, a, b, band_lo, start, _OFFSETS, grid, g0, g1)
        return hit, int(n)

    best_hit, best_n = met(time_rate, freq_rate)
    base_n, a_best, b_best = best_n, time_rate, freq_rate
    # A far rate can still be found on a near point (the low anchors survive): start from the
    # grid point of ``points`` (the wide grid) where most peaks meet, if clearly more do.
    for a, b in points:
        hit, n = met(a, b)
        if n > best_n and n >= REFINE_MIN_GAIN * base_n:
            best_hit, best_n, a_best, b_best = hit, n, a, b
    start_n = best_n
    for a, b in _refine_lines(a_best, b_best):
        hit, n = met(a, b)
        if n > best_n and n >= REFINE_MIN_GAIN * start_n:
            best_hit, best_n, a_best, b_best = hit, n, a, b
    frames = np.sort(query_peaks[best_hit, 0])
    first = int(frames[min(FIRST_HEARD_HITS, len(frames)) - 1]) if len(frames) else 0
    start = offset + round(mid * (time_rate - a_best))  # as met() placed the query under the best rates
    fit = _fit_rates(query_peaks, grid, g0, a_best, b_best, start, int(_OFFSETS[-1]), band_lo)
    if fit is None:
        return Refined(float(a_best), float(b_best), first)
    return Refined(*_pick_rates(fit, a_best, b_best), first)


FIT_MIN_PEAKS = 8  # agreeing peaks a least-squares rate needs; fewer keep the best counted rate
FIT_ROUNDS = 4  # match, fit, match again under the fit: each round reaches peaks further out
FIT_REACH = 0.06  # a round that moves a rate further than this (relative) is not believed
FIT_SIGMAS = 2.0  # standard errors a time rate may sit from a simpler model and still be it
# A time stretcher or pitch shifter moves onsets by a little more than a straight line: about
# 0.5 % over a few seconds. A fitted time rate that close to a simpler model is that model.
TIME_SLACK = 0.005
_NEAR_DT = np.repeat(np.arange(-1, 2), 3)  # the 3×3 cells around a peak: frame steps ...
_NEAR_DF = np.tile(np.arange(-1, 2), 3)  # ... and bin steps


@dataclass(frozen=True)
class _Fit:
    time_rate: float
    time_se: float
    freq_rate: float
    freq_se: float


def _pick_rates(fit: _Fit, a: float, b: float) -> tuple[float, float]:
    """The warp to report from the fitted rates and the counted point (``a``, ``b``) they started
    from. Frequency is fitted far more precisely than time (hundreds of bins against a few
    seconds of frames), and time also carries the small drifts a stretcher or shifter leaves, so
    the fitted time rate only chooses between the models: a time rate within its error (plus
    TIME_SLACK) of the frequency's is a speed change and takes the frequency's rate; one within
    it of 1 is a pitch shift or no change; any other is a time stretch. A point the counting
    found on the pitch line stays a pitch shift unless its time clearly moved with its frequency."""
    ta, fb = fit.time_rate, fit.freq_rate
    near = FIT_SIGMAS * fit.time_se + TIME_SLACK
    is_speed = abs(ta - fb) <= near and abs(fb - 1) > abs(ta - fb)
    if a == b != 1.0 or (is_speed and (a != 1.0 or b == 1.0 or abs(ta - 1) > near)):
        return fb, fb
    if a == 1.0 and (b != 1.0 or abs(ta - 1) <= near):
        return 1.0, fb
    return ta, fb


def _fit_rates(
    query_peaks: np.ndarray,
    grid: np.ndarray,
    g0: int,
    a: float,
    b: float,
    start: int,
    spread: int,
    band_lo: int,
) -> _Fit | None:
    """The time and frequency rates fitted by least squares to the query peaks that meet a
    reference peak (±1 frame and bin) under (``a``, ``b``), query frame 0 placed at ``start``
    ± ``spread`` frames (the best of those); None when too few peaks meet.

    Counting exact cells finds the rate only to its step, and a time rate hardly at all on a short
    query (0.5 % moves a 3 s query's last peak by a quarter of a frame). The agreeing peaks'
    positions say more: the reference time of each is a·t + c and its absolute frequency f / b,
    so a straight-line fit over a few dozen peaks, each off by at most half a frame or bin,
    pins both rates well inside the step. Each round matches again under the last fit, so a time
    rate off by a few percent (time is forgiving in the vote) is followed from the query's middle,
    where the peaks still meet, outwards.
    """
    fit: _Fit | None = None
    shift = float(start)  # reference frame of query frame 0 under the current rates
    each = np.arange(len(query_peaks))
    for _ in range(FIT_ROUNDS):
        t, f = warp_peaks(query_peaks, a, b, band_lo)
        fi = np.rint(f).astype(np.int64)
        cols = fi[None, :] + _NEAR_DF[:, None]  # (9, n): the 3×3 cells around each peak
        best: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None
        for k in range(-spread, spread + 1):
            tt = t + shift + k
            ti = np.rint(tt).astype(np.int64)
            rows = ti[None, :] + _NEAR_DT[:, None]
            ok = (rows >= g0) & (rows < g0 + grid.shape[0]) & (cols >= 0) & (cols < grid.shape[1])
            hit = np.zeros(rows.shape, dtype=bool)
            hit[ok] = grid[rows[ok] - g0, cols[ok]]
            d = np.where(hit, (rows - tt[None, :]) ** 2 + (cols - f[None, :]) ** 2, np.inf)
            near = np.argmin(d, axis=0)
            met = np.isfinite(d[near, each])
            if best is None or int(met.sum()) > best[0]:
                best = (int(met.sum()), met, rows[near, each], cols[near, each])
        assert best is not None
        n, met, rt, rf = best
        tq = query_peaks[met, 0].astype(np.float64)
        if n < FIT_MIN_PEAKS or np.ptp(tq) < 16:  # a slope needs peaks spread over half a second
            return fit
        fq = query_peaks[met, 1].astype(np.float64) + band_lo
        fr = rf[met].astype(np.float64) + band_lo
        rt_m = rt[met].astype(np.float64)
        (slope, icept), cov = np.polyfit(tq, rt_m, 1, cov="unscaled")
        t_sd = float(np.std(rt_m - (slope * tq + icept)))
        b_fit = float(np.dot(fq, fr) / np.dot(fr, fr))
        f_sd = float(np.std(fq - b_fit * fr))
        if abs(slope / a - 1) > FIT_REACH or abs(b_fit / b - 1) > FIT_REACH:
            return fit
        # Rounding leaves each position off by up to half a frame or bin (sd 0.29) at least.
        new = _Fit(float(slope), max(t_sd, 0.29) * math.sqrt(float(cov[0, 0])),
                   b_fit, max(f_sd, 0.29) / math.sqrt(float(np.dot(fr, fr))))  # fmt: skip
        settled = fit is not None and abs(new.time_rate - a) < 1e-4 and abs(new.freq_rate - b) < 1e-4
        fit, shift, spread = new, float(icept), 0
        a, b = fit.time_rate, fit.freq_rate
        if settled:
            break
    return fit


def _kernel() -> ModuleType:
    """The compiled counting loops, imported on first use (as ``vote._kernel``)."""
    from soundmark.match import verify_kernel

    return verify_kernel


def warm_up() -> None:
    """Compile verification's loops now (or load them from numba's cache), not in a first query."""
    z = np.zeros(1, dtype=np.int64)
    grid = np.zeros((1, 1), dtype=bool)
    _kernel().shift_counts(z, z, grid, 0, 1, 0, z)
    _kernel().met_at_best_offset(z, z, 1.0, 1.0, 0, 0, z, grid, 0, 1)


SAME_AUDIO_SHARE = 0.5  # share of one reference's peaks met by the other's: the same recording
COPY_MIN_SCORE = 3.0  # −log10 p against its own null that each of two copies reaches on its own


def shared_peaks(ref_a: np.ndarray, offset_a: int, ref_b: np.ndarray, offset_b: int, span: int) -> float:
    """Share of reference A's peaks in the ``span`` frames from ``offset_a`` that reference B has
    too (±1 frame and bin) at the same place of the query, i.e. shifted to ``offset_b``.

    Two catalogue entries holding the same recording (one file uploaded under several ids) share
    almost all their peaks there; unrelated recordings share only the few that chance lines up.
    """
    lo, hi = np.searchsorted(ref_a[:, 0], [offset_a, offset_a + span]) if len(ref_a) else (0, 0)
    a = ref_a[lo:hi].astype(np.int64)
    if len(a) == 0 or len(ref_b) == 0:
        return 0.0
    shift = offset_b - offset_a
    b0, b1 = np.searchsorted(ref_b[:, 0], [offset_b - 1, offset_b + span + 2])
    b = ref_b[b0:b1].astype(np.int64)
    # B's peaks widened by the tolerance once, then one membership test of A's shifted peaks.
    near = (np.arange(-1, 2)[:, None] * _FREQ_SPAN + np.arange(-1, 2)[None, :]).ravel()
    codes = ((b[:, 0] * _FREQ_SPAN + b[:, 1])[:, None] + near[None, :]).ravel()
    met = np.isin((a[:, 0] + shift) * _FREQ_SPAN + a[:, 1], codes)
    return float(np.count_nonzero(met)) / len(a)
