"""Fingerprint-level distractor tracks made from real reference fingerprints (for scale.py).

A distractor is the stored peak list of a real reference track put through a transform that a
query of the original cannot match, then hashed by soundmark's own ``pair_hashes`` with the
reference fanout — the code path of ``fingerprint.extract.fingerprint_samples`` after peak
picking — so its hashes have the statistics of real music rather than of random numbers.

The transform of distractor ``k`` (deterministic: growing a catalog yields the same distractors
as building it at once):
  source   reference ``k mod n`` (every reference gets the same share)
  pitch    absolute frequency × s, s log-uniform over PITCH_RANGE minus a band around every
           frequency ratio under which a public query could meet its original (the rates of
           both warp grids, the first and the wide one a query falls back to, times the
           corpus's speed/pitch kinds, ± PITCH_MARGIN): a key change of about 3-6 semitones,
           up or down
  tempo    times × r, r log-uniform over TEMPO_RANGE (free: the pitch already keeps it apart)
  reverse  every second distractor of a source is time-reversed
  rotate   the track starts at a random point and wraps round (offsets differ between copies)
Values come from a Halton sequence per source (randomly shifted), so the distractors of one
source spread evenly over the transform space instead of clustering into near-copies.
Peaks leaving the band are dropped, and a one-second block holding more than
``ref_peaks_per_second`` peaks (a faster tempo) is thinned at random to that density.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from soundmark.fingerprint.extract import Fingerprint
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins

PITCH_RANGE = (2 ** (-6 / 12), 2 ** (6 / 12))  # ±6 semitones
TEMPO_RANGE = (0.80, 1.25)
PITCH_MARGIN = 0.035  # relative distance kept from every ratio a query could be matched under
# Frequency rates of the public corpus's query kinds (speed ±3 %, pitch +1 semitone, the rest 1).
QUERY_FREQ_RATES = (1.0, 1.03, 0.97, 2 ** (1 / 12))


@dataclass(frozen=True)
class Transform:
    source: int  # index into the list of source references
    pitch: float  # absolute frequency multiplied by this
    tempo: float  # time multiplied by this (> 1: slower and longer)
    reverse: bool
    rotate: float  # fraction of the (transformed) track moved from its start to its end

    def describe(self) -> str:
        return f"pitch={self.pitch:.4f} tempo={self.tempo:.4f} reverse={int(self.reverse)} rotate={self.rotate:.3f}"


def forbidden_pitch(params: FingerprintParams, margin: float = PITCH_MARGIN) -> list[tuple[float, float]]:
    """Pitch factors a distractor must avoid: near any q / b for a query kind's frequency rate q
    and a frequency rate b of either warp grid (a query under warp b reads as pitch q / b of the
    original). The wide grid counts too: a query the first grid does not answer is searched
    over it, and a distractor in its reach would be a transformed copy of the query's audio,
    not chance."""
    grids = params.warp_grid + params.wide_grid
    ratios = sorted({q / b for q in QUERY_FREQ_RATES for _, b in grids})
    return [(r / (1 + margin), r * (1 + margin)) for r in ratios]


def allowed_pitch(params: FingerprintParams) -> list[tuple[float, float]]:
    """The allowed pitch factors as disjoint intervals inside PITCH_RANGE."""
    out: list[tuple[float, float]] = []
    lo = PITCH_RANGE[0]
    for a, b in sorted(forbidden_pitch(params)):
        if a > lo:
            out.append((lo, min(a, PITCH_RANGE[1])))
        lo = max(lo, b)
    if lo < PITCH_RANGE[1]:
        out.append((lo, PITCH_RANGE[1]))
    return out


def _halton(index: int, base: int) -> float:
    f, r = 1.0, 0.0
    while index > 0:
        f /= base
        r += f * (index % base)
        index //= base
    return r


def _from_unit(u: float, intervals: list[tuple[float, float]]) -> float:
    """The point at fraction ``u`` of the intervals' total log-length."""
    widths = [math.log(b / a) for a, b in intervals]
    x = u * sum(widths)
    for (a, _), w in zip(intervals, widths, strict=True):
        if x <= w:
            return a * math.exp(x)
        x -= w
    return intervals[-1][1]


def transform_for(k: int, n_sources: int, params: FingerprintParams, seed: int) -> Transform:
    """The transform of distractor number ``k`` (0-based)."""
    source, j = k % n_sources, k // n_sources
    shift = np.random.default_rng([seed, source]).random(3)
    u = [(_halton(j // 2 + 1, base) + s) % 1.0 for base, s in zip((2, 3, 5), shift, strict=True)]
    pitch = _from_unit(u[0], allowed_pitch(params))
    tempo = _from_unit(u[1], [TEMPO_RANGE])
    return Transform(source, pitch, tempo, reverse=bool(j % 2), rotate=u[2])


def transform_peaks(peaks: np.ndarray, t: Transform, params: FingerprintParams, seed: int = 0) -> np.ndarray:
    """The source's peaks (int32 (n, 2): frame, band bin, sorted by frame) under ``t``.

    Returns int32 (m, 2) sorted by frame then bin, no duplicates, bins inside the band.
    """
    if len(peaks) == 0:
        return np.zeros((0, 2), dtype=np.int32)
    lo, hi = band_bins(params)
    frames = np.asarray(peaks[:, 0], dtype=np.float64) * t.tempo
    length = float(frames.max()) + 1.0
    if t.reverse:
        frames = length - 1.0 - frames
    frames = np.mod(frames + t.rotate * length, length)
    bins = (np.asarray(peaks[:, 1], dtype=np.float64) + lo) * t.pitch - lo
    tq = np.rint(frames).astype(np.int64)
    fq = np.rint(bins).astype(np.int64)
    keep = (fq >= 0) & (fq < hi - lo)
    tq, fq = tq[keep], fq[keep]
    pairs = np.unique(np.stack([tq, fq], axis=1), axis=0)  # sorted by frame, then bin
    return _thin(pairs, params, seed).astype(np.int32)


def _thin(peaks: np.ndarray, params: FingerprintParams, seed: int) -> np.ndarray:
    """At most ``ref_peaks_per_second`` peaks per one-second block (random ones dropped)."""
    per_block = max(1, round(1.0 / params.frame_seconds))
    cap = max(1, round(params.ref_peaks_per_second))
    block = peaks[:, 0] // per_block
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(peaks)), block))
    starts = np.searchsorted(block[order], block[order], side="left")
    kept = np.sort(order[(np.arange(len(order)) - starts) < cap])
    return peaks[kept]


def distractor_fingerprint(source_peaks: np.ndarray, t: Transform, params: FingerprintParams, seed: int) -> Fingerprint:
    """Peaks and hashes of one distractor, hashed exactly as a reference track is."""
    peaks = transform_peaks(source_peaks, t, params, seed)
    hashes, times = pair_hashes(peaks[:, 0], peaks[:, 1], params, params.fanout)
    return Fingerprint(peaks, hashes, times)


def content_hash(fp: Fingerprint) -> str:
    """The content hash ingest gives a track (sha256 of its hashes and times)."""
    digest = hashlib.sha256()
    digest.update(fp.hashes.tobytes())
    digest.update(fp.times.tobytes())
    return digest.hexdigest()
