"""Why a clip matched (or did not): the evidence of one recognition, as numbers, no drawing.

The recognizer runs once, as for ``recognize``, with a ``ScoreTrace`` that keeps what it saw:
the vote pairs, the candidates before the min-votes cut, each verified candidate's score parts
and stored peaks. From these come, for the best candidate, the query's peaks, the reference's
peaks mapped onto the query's clock, which query peaks agree, and the offset histogram of its
votes with the winning bin; and for every candidate a verdict and the sentence that explains it.
``render/explain.py`` draws it; ``to_dict`` is the evidence as JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from soundmark.catalog.models import Track
from soundmark.fingerprint.extract import QueryPrint, query_fingerprint, warp_peaks
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins
from soundmark.match.recognizer import Recognizer, ScoreParts, ScoreTrace
from soundmark.match.vote import Candidate, Pairs

# verify_alignment's tolerances (frames, bins): a query peak agrees when a stored peak lies this
# close to it at the alignment. Its count over the query equals the verification's hits (tested).
TOL_FRAMES = 1
TOL_BINS = 1
_FREQ_SPAN = 1 << 10  # verification's frequency axis: warped bins past it meet no reference
LOST_VERIFICATION = 1.0  # a peaks score below this (p > 0.1): the peaks do not line up

MATCH = "match"
ALTERNATIVE = "alternative"
BELOW_VOTES = "below min votes"
BELOW_SCORE = "below the score threshold"
LOST = "lost verification"
NOT_REPORTED = "not reported"
REMOVED = "removed from the catalog"


@dataclass(frozen=True)
class CandidateEvidence:
    """One candidate the recognizer weighed, and what became of it."""

    track_id: int
    title: str | None
    artist: str | None
    offset_seconds: float  # position in the reference of the query's first sample
    time_rate: float  # the warp: playback speed of the query relative to the reference
    freq_rate: float  # ... and its frequency scale (pitch)
    votes: int  # hashes aligned at this offset (± the vote tolerance)
    runner_up: int  # best votes of the same track and warp at another offset
    verified: bool  # had the votes to be verified on the peaks
    agreeing: int = 0  # query peaks meeting a stored peak at the alignment
    peaks: int = 0  # query peaks inside the reference there
    peaks_chance: float = 0.0  # agreeing peaks chance gives
    peaks_score: float = 0.0  # −log10 p of ``agreeing``
    votes_chance: float = 0.0
    votes_score: float = 0.0  # −log10 p of ``votes``
    score: float | None = None  # max(peaks, votes) − correction; None when not verified
    verdict: str = ""  # MATCH, ALTERNATIVE, BELOW_VOTES, BELOW_SCORE, LOST, NOT_REPORTED, REMOVED
    reason: str = ""  # the verdict in a sentence, with its numbers

    @property
    def name(self) -> str:
        who = " - ".join(x for x in (self.artist, self.title) if x)
        return who or f"track {self.track_id}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "track_id": self.track_id, "title": self.title, "artist": self.artist,
            "offset_seconds": round(self.offset_seconds, 3), "time_rate": self.time_rate,
            "freq_rate": self.freq_rate, "votes": self.votes, "runner_up": self.runner_up,
            "verified": self.verified, "verdict": self.verdict, "reason": self.reason,
        }  # fmt: skip
        if self.verified:
            out.update({
                "agreeing_peaks": self.agreeing, "peaks": self.peaks,
                "peaks_chance": round(self.peaks_chance, 2), "peaks_score": round(self.peaks_score, 2),
                "votes_chance": round(self.votes_chance, 2), "votes_score": round(self.votes_score, 2),
                "score": None if self.score is None else round(self.score, 2),
            })  # fmt: skip
        return out


@dataclass(frozen=True)
class Histogram:
    """The offset histogram of one candidate's votes (its track, its warp)."""

    starts: np.ndarray  # float64 seconds: each bin's first offset in the reference
    counts: np.ndarray  # int64 votes per bin
    bin_seconds: float  # width: the vote window (2 × tolerance + 1 frames)
    winner: int  # index of the bin the candidate's offset won with (its count = its votes)


@dataclass(frozen=True)
class Alignment:
    """The best candidate's peaks laid on the query's clock (seconds, Hz)."""

    query_t: np.ndarray  # float64 seconds in the clip
    query_hz: np.ndarray  # float64
    agree: np.ndarray  # bool per query peak: meets a stored peak at the alignment
    ref_t: np.ndarray  # the reference's stored peaks in that stretch, mapped onto the query's clock
    ref_hz: np.ndarray


@dataclass(frozen=True)
class Explanation:
    duration_seconds: float  # of the clip analysed
    query_peaks: int
    matched: bool
    candidates: list[CandidateEvidence]  # strongest first: the match (if any) leads
    best: CandidateEvidence | None  # the match, or the strongest rejected candidate
    alignment: Alignment | None  # of ``best``
    histogram: Histogram | None  # of ``best``
    min_score: float
    min_votes: int
    correction: float
    meaning: str  # what the best score means, in a sentence

    def to_dict(self) -> dict[str, object]:
        h = self.histogram
        a = self.alignment
        return {
            "matched": self.matched,
            "duration_seconds": round(self.duration_seconds, 2),
            "query_peaks": self.query_peaks,
            "min_score": self.min_score,
            "min_votes": self.min_votes,
            "correction": round(self.correction, 2),
            "meaning": self.meaning,
            "best": None if self.best is None else self.best.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "alignment": None if a is None else {
                "query_peaks": len(a.query_t), "agreeing_peaks": int(np.count_nonzero(a.agree)),
                "reference_peaks": len(a.ref_t),
            },
            "histogram": None if h is None else {
                "bin_seconds": round(h.bin_seconds, 4),
                "winner_offset_seconds": round(float(h.starts[h.winner]) + h.bin_seconds / 2, 3),
                "winner_votes": int(h.counts[h.winner]),
                "bins": [[round(float(s), 3), int(c)] for s, c in zip(h.starts, h.counts, strict=True) if c],
            },
        }  # fmt: skip


def explain_samples(recognizer: Recognizer, samples: np.ndarray) -> Explanation:
    """The evidence behind recognising mono float32 ``samples`` at the engine rate."""
    return explain_print(recognizer, query_fingerprint(samples, recognizer.params))


def explain_print(recognizer: Recognizer, qp: QueryPrint) -> Explanation:
    """The evidence behind ``recognizer.recognize_print(qp)`` (run once, traced)."""
    trace = ScoreTrace()
    recognizer.recognize_print(qp, trace=trace)
    qp = trace.query or qp  # the second, wide-grid search's print when the first found nothing
    p, s = recognizer.params, recognizer.settings
    store = recognizer.store
    ranked = trace.ranked
    tracks = store.catalog.get_tracks(c.track_id for c in ranked) if ranked else {}
    band_lo = band_bins(p)[0]
    evidence = [_evidence(c, qp, trace, tracks.get(c.track_id), recognizer, band_lo) for c in ranked]
    first = {tid: i for i, tid in enumerate(trace.reported)}
    evidence.sort(
        key=lambda e: (first.get(e.track_id, len(first)), -(e.score if e.score is not None else -1e9), -e.votes)
    )
    best = evidence[0] if evidence else None
    alignment = histogram = None
    if best is not None:
        cand = next(c for c in ranked if c.track_id == best.track_id)
        ref = trace.refs.get(cand.track_id)
        alignment = align(qp, store.index.track_peaks(cand.track_id) if ref is None else ref, cand, p)
        if trace.pairs is not None:
            histogram = offset_histogram(trace.pairs, cand, s.vote_tolerance, p.frame_seconds)
    return Explanation(
        duration_seconds=qp.frames * p.frame_seconds,
        query_peaks=len(qp.peaks),
        matched=bool(trace.reported),
        candidates=evidence,
        best=best,
        alignment=alignment,
        histogram=histogram,
        min_score=s.min_score,
        min_votes=s.min_votes,
        correction=trace.correction,
        meaning=meaning(best, s.min_score, s.min_votes, len(ranked)),
    )


def meaning(best: CandidateEvidence | None, min_score: float, min_votes: int, tried: int) -> str:
    """The score of ``best`` read out: the chance of a random alignment this good."""
    if best is None:
        return "no candidate: the clip's hashes met no stored track"
    if best.score is None:
        return f"no candidate reached the {min_votes} aligned votes needed to be verified (best: {best.votes})"
    return (
        f"score {best.score:.1f} = -log10 of the chance that an unrelated track lines up this well "
        f"({odds(best.score)}), counting the {tried} candidates tried; a match needs {min_score:g} ({odds(min_score)})"
    )


def odds(score: float) -> str:
    """A −log10 p read out as odds: "1 in 1,000", "1 in 10^42", "p = 0.32"."""
    if score < 1:
        return f"p = {10**-score:.2f}"
    if score <= 9:
        return f"1 in {10**score:,.0f}"
    return f"1 in 10^{score:.0f}"


def _evidence(
    c: Candidate, qp: QueryPrint, trace: ScoreTrace, track: Track | None, recognizer: Recognizer, band_lo: int
) -> CandidateEvidence:
    p, s = recognizer.params, recognizer.settings
    time_rate, freq_rate = qp.warps[c.rate_idx].time_rate, qp.warps[c.rate_idx].freq_rate
    who = CandidateEvidence(
        track_id=c.track_id,
        title=track.meta.title if track else None,
        artist=track.meta.artist if track else None,
        offset_seconds=max(0.0, c.offset * p.frame_seconds),
        time_rate=time_rate,
        freq_rate=freq_rate,
        votes=c.votes,
        runner_up=c.runner_up,
        verified=False,
    )
    parts: ScoreParts | None = trace.parts.get(c.track_id)
    if parts is None:
        reason = f"{c.votes} aligned votes; {s.min_votes} are needed before its peaks are verified"
        return replace(who, verdict=BELOW_VOTES, reason=reason)
    warp = qp.warps[c.rate_idx]
    agree, inside = agreeing_peaks(qp.peaks, trace.refs[c.track_id], warp.time_rate, warp.freq_rate, c.offset, band_lo)
    agreeing, n = int(np.count_nonzero(agree)), int(np.count_nonzero(inside))
    score = max(parts.peaks_score, parts.votes_score) - trace.correction
    detail = (
        f"{agreeing} of {n} peaks agree where chance gives {_num(parts.peaks_chance)} "
        f"(peaks score {_num(parts.peaks_score)}); {c.votes} votes where chance gives {_num(parts.votes_chance)} "
        f"(votes score {_num(parts.votes_score)}); minus {_num(trace.correction)} for the tests made"
    )
    if trace.reported and c.track_id == trace.reported[0]:
        verdict, reason = MATCH, f"score {score:.1f} >= {s.min_score:g}: {detail}"
    elif c.track_id in trace.reported:
        verdict, reason = ALTERNATIVE, f"score {score:.1f}, reported beside the best: {detail}"
    elif score >= s.min_score and track is None:
        verdict, reason = REMOVED, f"score {score:.1f}, but the track is no longer in the catalog"
    elif score >= s.min_score:
        verdict = NOT_REPORTED
        reason = f"score {score:.1f}, but only {s.alternatives} alternatives are reported: {detail}"
    elif parts.peaks_score < LOST_VERIFICATION:
        verdict = LOST
        reason = f"its votes did not hold on the peaks: {detail}; score {score:.1f} < {s.min_score:g}"
    else:
        verdict, reason = BELOW_SCORE, f"score {score:.1f} < {s.min_score:g}: {detail}"
    return replace(
        who,
        verified=True,
        agreeing=agreeing,
        peaks=n,
        peaks_chance=parts.peaks_chance,
        peaks_score=parts.peaks_score,
        votes_chance=parts.votes_chance,
        votes_score=parts.votes_score,
        score=score,
        verdict=verdict,
        reason=reason,
    )


def _num(x: float) -> str:
    """One decimal, without the sign of a negative zero."""
    text = f"{x:.1f}"
    return "0.0" if text == "-0.0" else text


def agreeing_peaks(
    query_peaks: np.ndarray, ref: np.ndarray, time_rate: float, freq_rate: float, offset: int, band_lo: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query peak: (agrees, inside the reference) at ``offset`` frames under the warp.

    Verification's test (``verify_alignment``: the same warp_peaks, rounding and tolerances),
    kept peak by peak instead of counted: the count of ``agrees`` is its hits.
    """
    n = len(query_peaks)
    if n == 0 or len(ref) == 0:
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    t, f = warp_peaks(query_peaks, time_rate, freq_rate, band_lo)
    ti = np.rint(t).astype(np.int64) + offset
    fi = np.rint(f).astype(np.int64)
    inside = (fi >= 0) & (fi < _FREQ_SPAN) & (ti >= 0) & (ti <= int(ref[-1, 0]))
    r = ref.astype(np.int64)
    dt = np.arange(-TOL_FRAMES, TOL_FRAMES + 1)
    df = np.arange(-TOL_BINS, TOL_BINS + 1)
    near = (dt[:, None] * _FREQ_SPAN + df[None, :]).ravel()
    stored = r[:, 0] * _FREQ_SPAN + np.clip(r[:, 1], 0, _FREQ_SPAN - 1)
    codes = np.unique((stored[:, None] + near[None, :]).ravel())
    return inside & np.isin(ti * _FREQ_SPAN + fi, codes), inside


def align(qp: QueryPrint, ref: np.ndarray, c: Candidate, p: FingerprintParams) -> Alignment:
    """The query's peaks and the reference's stored peaks of the aligned stretch, both on the
    query's clock (seconds, Hz): a reference peak at (frame r, bin b) sits at query frame
    (r − offset) / time rate and bin (b + lo) · freq rate − lo, the inverse of warp_peaks."""
    lo = band_bins(p)[0]
    warp = qp.warps[c.rate_idx]
    agree, _ = agreeing_peaks(qp.peaks, ref, warp.time_rate, warp.freq_rate, c.offset, lo)
    hz = p.sample_rate / p.n_fft
    q = qp.peaks.astype(np.float64)
    a, b = np.searchsorted(ref[:, 0], [c.offset - 1, c.offset + qp.frames * warp.time_rate + 2]) if len(ref) else (0, 0)
    r = ref[a:b].astype(np.float64)
    return Alignment(
        query_t=q[:, 0] * p.frame_seconds,
        query_hz=(q[:, 1] + lo) * hz,
        agree=agree,
        ref_t=(r[:, 0] - c.offset) / warp.time_rate * p.frame_seconds,
        ref_hz=(r[:, 1] + lo) * warp.freq_rate * hz,
    )


def offset_histogram(pairs: Pairs, c: Candidate, tolerance: int, frame_seconds: float) -> Histogram:
    """The candidate's votes (its track, its warp) binned by offset, the bins as wide as the vote
    window and placed so that one of them is exactly the window the candidate won with."""
    mine = (pairs.track_ids == c.track_id) & (pairs.rate_idx == c.rate_idx)
    offsets = pairs.offsets[mine]
    width = 2 * tolerance + 1
    if len(offsets) == 0:
        return Histogram(np.array([(c.offset - tolerance) * frame_seconds]), np.array([0]), width * frame_seconds, 0)
    k = np.floor_divide(offsets - (c.offset - tolerance), width)
    k0 = int(min(k.min(), 0))
    counts = np.bincount(k - k0, minlength=int(max(k.max(), 0)) - k0 + 1).astype(np.int64)
    starts = ((np.arange(len(counts)) + k0) * width + c.offset - tolerance) * frame_seconds
    return Histogram(starts.astype(np.float64), counts, width * frame_seconds, -k0)
