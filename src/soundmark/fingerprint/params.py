"""Fingerprint parameters: one frozen, versioned object stored with every index.

An index built with one set of parameters is useless to a matcher using another, so the store
records ``FingerprintParams.signature()`` and refuses to open with a different one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

# Linear-bin hashes survive a frequency scale only within about ±0.75 % (a high anchor moves a
# bin beyond it; benchmarks/warps.py measured 57 % at 1-2 % off a point, 0 % at 7-8 %), so the
# wide grid's points lie 1.5 % apart along each line: speed ±7.5 %, pitch ±12 % (two semitones), and
# the time-only points of tempo ±5 % (time is forgiving: ±5 % between them held 100 %).
WARP_STEP = 0.015


def wide_warp_grid(step: float = WARP_STEP) -> tuple[tuple[float, float], ...]:
    """The second search's warp grid: the unwarped point first, then the speed, pitch and tempo lines."""
    speed = [round(1 + step * k, 4) for k in range(-5, 6) if k]
    pitch = [round(1 + step * k, 4) for k in range(-8, 9) if k]
    return ((1.0, 1.0), *((r, r) for r in speed), *((1.0, b) for b in pitch), (0.95, 1.0), (1.05, 1.0))


@dataclass(frozen=True)
class FingerprintParams:
    # --- signal -------------------------------------------------------------------------------
    sample_rate: int = 8000  # Hz; 8 kHz keeps the band that survives phones, GSM and speakers
    n_fft: int = 1024  # samples per STFT window (128 ms at 8 kHz): fine frequency resolution
    hop: int = 256  # samples between frames (32 ms): the time unit of every offset
    fmin_hz: float = 150.0  # lowest frequency considered for peaks
    fmax_hz: float = 3800.0  # highest frequency considered for peaks

    # --- peaks --------------------------------------------------------------------------------
    peak_freq_radius: int = 12  # bins: a peak is the maximum of ±radius in frequency ...
    peak_time_radius: int = 5  # frames: ... and of ±radius in time
    background_freq_bins: int = 41  # width (bins) of the local-mean filter the peak must exceed
    min_prominence_db: float = 4.0  # dB above the local mean a peak must stand
    peak_loudness_weight: float = 0.5  # weight of loudness beside prominence when ranking peaks
    ref_peaks_per_second: float = 22.0  # density kept when indexing (index size scales with it)
    query_peaks_per_second: float = 40.0  # density kept for queries (more chances to meet ref peaks)

    # --- hashes -------------------------------------------------------------------------------
    fanout: int = 6  # pairs per anchor peak
    query_fanout: int = 10  # pairs per anchor peak for queries
    query_jitter: int = (
        0  # (measured: more FPs than hits) queries also try each pair's Δt/Δf moved by ±jitter (0 = exact only)
    )
    max_dt: int = 63  # frames: farthest target peak (≈1 s)
    max_df: int = 63  # bins: widest frequency jump between paired peaks
    freq_bits: int = 9  # bits for the anchor frequency bin
    df_bits: int = 7  # bits for the signed frequency difference
    dt_bits: int = 6  # bits for the time difference

    # --- matching -----------------------------------------------------------------------------
    # Query-side warp grid of (time rate, frequency rate): a query played with its time scaled
    # by a and its frequencies by b has its peaks mapped back to reference coordinates
    # (t*a, f/b) before hashing, so radio speed-ups (a = b) and pitch shifts (a = 1) still vote
    # on one offset. Verification on the raw peaks rejects what the wider search lets in.
    warp_grid: tuple[tuple[float, float], ...] = (
        (1.0, 1.0),
        (0.97, 0.97),
        (1.03, 1.03),
        (1.0, 1.0595),  # one semitone up
        (1.0, 0.9439),  # one semitone down
    )
    # The second search, for a query the first grid finds nothing for: every rate of speed ±7.5 %,
    # pitch ±2 semitones and tempo ±5 % (``wide_warp_grid``). Kept apart so that the first
    # search, which answers most queries, keeps its speed and its chance level (more warps are
    # more tries: a wider first grid cost noisy unwarped queries, benchmarks/LOG.md).
    wide_grid: tuple[tuple[float, float], ...] = field(default_factory=lambda: wide_warp_grid())
    max_postings_per_hash: int = 4000  # hashes more common than this are stop-words at query time
    # A query reads at most this many postings per distinct hash on average; beyond it the
    # commonest hashes are skipped (``index.base.within_budget``), so a query's work stays flat
    # as the catalog grows instead of growing with it (0 = no budget).
    query_postings_per_hash: float = 32.0  # measured at 1k tracks: 16 cost 0.7 points, 32 none
    # A query the first search finds nothing for, when its budget left hashes out, is searched
    # again on the same grid with this budget: a noisy query's few true votes sit in common
    # hashes too (at 10k tracks the budget of 32 cost 6 points, none read all), while the
    # queries answered at once, most of them, keep the first search's cost (0 = no retry).
    query_postings_per_hash_retry: float = 256.0

    # Layout version of hashes and postings; bump when the bit layout changes.
    hash_version: int = 2

    @property
    def frame_seconds(self) -> float:
        return self.hop / self.sample_rate

    def index_fields(self) -> dict[str, object]:
        """The fields that determine what is stored; query-only fields may change freely."""
        query_only = {"query_peaks_per_second", "query_fanout", "query_jitter", "warp_grid", "wide_grid",
                      "max_postings_per_hash",
                      "query_postings_per_hash", "query_postings_per_hash_retry"}  # fmt: skip
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in query_only}

    def signature(self) -> str:
        blob = json.dumps(self.index_fields(), sort_keys=True)
        return f"v{self.hash_version}-" + hashlib.sha256(blob.encode()).hexdigest()[:16]
