"""Recognise an excerpt against a store: fingerprint, look up, vote, verify, describe."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from soundmark.catalog.models import Track
from soundmark.fingerprint.extract import QueryPrint, query_fingerprint
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import peak_candidates
from soundmark.fingerprint.spectrogram import band_bins
from soundmark.fingerprint.windows import window_print
from soundmark.match.verify import (
    COPY_MIN_SCORE,
    SAME_AUDIO_SHARE,
    Verification,
    poisson_tail_log10,
    refine_warp,
    shared_peaks,
    verify_alignment,
)
from soundmark.match.verify import warm_up as warm_up_verify
from soundmark.match.vote import Candidate, Pairs, QueryHashes, best_candidates, join, searched_groups, vote
from soundmark.match.vote import warm_up as warm_up_vote
from soundmark.store import Store

MIN_OTHERS = 2  # other candidates needed before their hits serve as the chance level
# The (track, warp) groups the chance level was calibrated on: the 78-track store × 9 warps. A
# vote over more groups picks its chance candidates from more tries (see ``_at_calibration``).
CALIBRATED_GROUPS = 700


@dataclass(frozen=True)
class MatchSettings:
    min_score: float = 3.0  # −log10 p of the verified alignment, corrected for candidates tried
    min_votes: int = 4  # aligned hashes a candidate needs before it is verified
    vote_tolerance: int = 2  # frames of offset jitter that still count as aligned
    candidates: int = 6  # candidates verified per query
    alternatives: int = 3  # further matches reported beside the best


@dataclass(frozen=True)
class Match:
    track: Track
    offset_seconds: float  # position in the reference of the query's first sample
    score: float
    votes: int
    time_rate: float  # playback speed of the query relative to the reference
    freq_rate: float  # frequency scale (pitch) of the query relative to the reference
    # Seconds into the query where the song is first heard (its agreeing peaks begin): a stream
    # window that ends on a song's first seconds holds other audio before them, whatever the
    # offset says (a song begun inside the excerpt has a negative offset, reported as AudD's 0).
    lead_seconds: float = 0.0

    @property
    def timecode(self) -> str:
        return format_timecode(self.offset_seconds)

    @property
    def title(self) -> str | None:
        return self.track.meta.title

    @property
    def artist(self) -> str | None:
        return self.track.meta.artist


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    verification: Verification
    score: float
    ref: np.ndarray = field(repr=False, compare=False)  # the reference's stored peaks it was verified on


@dataclass(frozen=True)
class ScoreParts:
    """How one verified candidate's score was made (``score = max(peaks, votes) - correction``)."""

    peaks_score: float  # −log10 p of its agreeing peaks against the chance level
    peaks_chance: float  # agreeing peaks chance gives: its wrong offsets' mean, or the other candidates' level
    votes_score: float  # −log10 p of its aligned votes against the chance level
    votes_chance: float  # votes chance gives (its runner-up offset, or the other candidates')
    copy_group: int  # candidates holding the same audio share a group


@dataclass
class ScoreTrace:
    """What one recognition saw, filled in only when a caller passes one (``soundmark explain``):
    the normal path keeps none of it."""

    pairs: Pairs | None = None  # every (query hash, posting) pair: the votes
    ranked: list[Candidate] = field(default_factory=list)  # best per track, before the min-votes cut
    correction: float = 0.0  # log10 of the tests made (Bonferroni), taken off every score
    parts: dict[int, ScoreParts] = field(default_factory=dict)  # by track id, verified candidates
    refs: dict[int, np.ndarray] = field(default_factory=dict)  # stored peaks, by track id
    reported: list[int] = field(default_factory=list)  # track ids recognize_print answered, best first
    query: QueryPrint | None = None  # the print the evidence is of (the wide grid's, after a second search)


def _chance(values: list[float]) -> float:
    """A Poisson mean for counts like ``values``, widened when they spread more than Poisson."""
    mean = float(np.mean(values))
    return mean + max(0.0, float(np.std(values)) - math.sqrt(max(mean, 1e-9)))


def _at_calibration(level: float, groups: int, found: int) -> float:
    """The chance level ``level``, met by the ``found`` best of ``groups`` searched groups, moved
    to what the best ``found`` of CALIBRATED_GROUPS groups would meet.

    The other candidates are the best chance alignments of every (track, warp) group the vote
    searched, so their level grows with the catalog even though one unrelated track's chance
    does not. Model: one group's chance count X ~ Poisson(λ0); ``found`` of ``groups`` reach
    ``level`` when groups · P(X ≥ level | λ0) = found, which gives λ0 (bisection); the level of
    the calibration catalog is then L0 with CALIBRATED_GROUPS · P(X ≥ L0 | λ0) = found. Only the
    position of the level moves: the score keeps its Poisson tail at L0 (widened for overdispersion
    as before, so its calibration on the 78-track store stands), and the tries beyond the
    calibration catalog are paid for by a Bonferroni term, log10(groups / CALIBRATED_GROUPS).
    """
    if groups <= CALIBRATED_GROUPS or level <= 0:
        return level
    target = math.log10(found / groups)
    top = math.ceil(level)
    lo, hi = 1e-3, level
    for _ in range(30):  # λ0: P(X ≥ level | λ0) rises with λ0
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if poisson_tail_log10(top, mid) < target else (lo, mid)
    lam0 = hi
    target0 = math.log10(found / CALIBRATED_GROUPS)
    lo, hi = lam0, lam0 + 10 * math.sqrt(lam0) + 20
    for _ in range(30):  # L0: P(X ≥ L0 | λ0) falls with L0
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if poisson_tail_log10(math.ceil(mid), lam0) < target0 else (mid, hi)
    return min(level, lo)


def query_budget(params: FingerprintParams, hashes: int, per_hash: float | None = None) -> int | None:
    """The postings a query of ``hashes`` distinct hashes may read at ``per_hash`` postings per
    hash (default ``params.query_postings_per_hash``; None: unbounded)."""
    per = params.query_postings_per_hash if per_hash is None else per_hash
    return int(per * hashes) if per > 0 else None


def format_timecode(seconds: float) -> str:
    """AudD's timecode: MM:SS, or HH:MM:SS from one hour on."""
    s = max(0, round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class Recognizer:
    def __init__(self, store: Store, settings: MatchSettings | None = None):
        self.store = store
        self.params: FingerprintParams = store.params
        self.settings = settings or MatchSettings()
        self._band_lo = band_bins(self.params)[0]

    def warm_up(self) -> None:
        """Load every compiled loop a search runs (from numba's cache, or compile it) now, so a
        server's first request does not pay for it."""
        warm_up_vote()
        warm_up_verify()
        pair_hashes(np.zeros(2), np.zeros(2), self.params, 1, compiled=True)
        peak_candidates(np.zeros((1, 1), dtype=np.float32), self.params, compiled=True)

    def recognize(self, samples: np.ndarray) -> list[Match]:
        """Matches for mono float32 samples at the engine rate, best first; empty when unknown."""
        return self.recognize_print(query_fingerprint(samples, self.params))

    def recognize_print(self, qp: QueryPrint, *, trace: ScoreTrace | None = None) -> list[Match]:
        """Matches for a query print made elsewhere (a live stream's window), best first;
        ``trace`` (optional) is filled with the evidence behind them."""
        self.store.refresh()
        s = self.settings
        found, dropped = self._search(qp, trace, 1.0, self.params.query_postings_per_hash)
        accepted = [x for x in found if x.score >= s.min_score]
        tried = 1.0  # searches of the first grid so far
        retry = self.params.query_postings_per_hash_retry
        if not accepted and dropped and retry > self.params.query_postings_per_hash:
            # The budget left common hashes out and nothing was found: the same grid again with a
            # wider budget. It tests the same hypotheses on more evidence, a second look that at
            # most doubles the chances: its scores pay log10(2).
            tried = 2.0
            found, _ = self._search(qp, trace, tried, retry)
            accepted = [x for x in found if x.score >= s.min_score]
        if not accepted and self.params.wide_grid and len(qp.peaks):
            # Nothing on the first grid: search again over every rate of the wide grid. It is a
            # further test of the same query over more warps, each one more try for chance: its
            # scores pay log10((first-grid searches + 1) × wide warps / first warps)
            # (Bonferroni), whatever the catalog's size (a two-track store found a chance
            # alignment among 29 warps without it).
            tries = (tried + 1) * len(self.params.wide_grid) / max(1, len(qp.warps))
            qp = window_print(qp.peaks, 0, qp.frames, dataclasses.replace(self.params, warp_grid=self.params.wide_grid))
            found, _ = self._search(qp, trace, tries, self.params.query_postings_per_hash)
            accepted = [x for x in found if x.score >= s.min_score]
            if trace is not None:
                trace.query = qp
        if not accepted:
            return []
        tracks = self.store.catalog.get_tracks(x.candidate.track_id for x in accepted)
        out = []
        for rank, x in enumerate(accepted[: 1 + s.alternatives]):
            track = tracks.get(x.candidate.track_id)
            if track is None:  # removed meanwhile
                continue
            c = x.candidate
            time_rate, freq_rate = qp.warps[c.rate_idx].time_rate, qp.warps[c.rate_idx].freq_rate
            lead = 0.0
            if rank == 0:  # the answer's speed and pitch, finer than the grid's point it was found at
                r = refine_warp(qp.peaks, x.ref, time_rate, freq_rate, c.offset, self._band_lo, self.params.wide_grid)
                time_rate, freq_rate, lead = r.time_rate, r.freq_rate, r.first_frame * self.params.frame_seconds
            out.append(
                Match(
                    track=track,
                    offset_seconds=max(0.0, c.offset * self.params.frame_seconds),
                    score=round(x.score, 1),
                    votes=c.votes,
                    time_rate=round(time_rate, 4),
                    freq_rate=round(freq_rate, 4),
                    lead_seconds=lead,
                )
            )
        if trace is not None:
            trace.reported = [m.track.id for m in out]
        return out

    def score(self, samples: np.ndarray) -> list[Scored]:
        """Every verified candidate, best first (including those below the threshold)."""
        qp = query_fingerprint(samples, self.params)
        return self.score_print(qp)

    def score_print(self, qp: QueryPrint, *, trace: ScoreTrace | None = None, tries: float = 1.0) -> list[Scored]:
        """Every verified candidate, best first; ``trace`` (optional) is filled with the evidence;
        ``tries``: how many times more hypotheses this query has been tested on than one search."""
        return self._search(qp, trace, tries, self.params.query_postings_per_hash)[0]

    def _search(
        self, qp: QueryPrint, trace: ScoreTrace | None, tries: float, per_hash: float
    ) -> tuple[list[Scored], bool]:
        """score_print under a posting budget of ``per_hash`` postings per distinct hash, and
        whether that budget left any hash out."""
        p, s = self.params, self.settings
        if not qp.warps or sum(len(w.hashes) for w in qp.warps) == 0:
            return [], False
        query = QueryHashes(
            hashes=np.concatenate([w.hashes for w in qp.warps]),
            times=np.concatenate([w.times for w in qp.warps]).astype(np.int64),
            rate_idx=np.concatenate([np.full(len(w.hashes), i, dtype=np.int64) for i, w in enumerate(qp.warps)]),
        )
        unique, inverse = np.unique(query.hashes, return_inverse=True)
        hits = self.store.index.lookup(unique, p.max_postings_per_hash, query_budget(p, len(unique), per_hash))
        n_rates, tol = len(qp.warps), s.vote_tolerance
        if trace is None:
            # Candidates under min_votes are never verified: the vote may leave them out.
            ranked, groups = vote(query, unique, inverse, hits, n_rates, tol, s.candidates, floor=s.min_votes)
        else:  # the pairs themselves, and every candidate (explain's "below the votes needed")
            pairs = join(query, unique, inverse, hits)
            ranked, groups = best_candidates(pairs, n_rates, tol, s.candidates), searched_groups(pairs, n_rates)
            trace.pairs = pairs
        cands = [c for c in ranked if c.votes >= s.min_votes]
        # Two tests per candidate (peaks, votes) over all candidates, and the groups searched
        # beyond those the chance level was calibrated on: Bonferroni correction.
        correction = math.log10(max(1.0, 2 * len(cands) * tries)) + math.log10(max(1.0, groups / CALIBRATED_GROUPS))
        checks = []
        refs = []
        for c in cands:
            warp = qp.warps[c.rate_idx]
            ref = self.store.index.track_peaks(c.track_id)
            v = verify_alignment(
                qp.peaks, ref, warp.time_rate, warp.freq_rate, c.offset, self._band_lo,
            )  # fmt: skip
            checks.append((c, v))
            refs.append(ref)
        copies = _copies(cands, [v for _, v in checks], refs, qp.frames)
        if trace is not None:
            trace.ranked, trace.correction = ranked, correction
            trace.refs = {c.track_id: ref for c, ref in zip(cands, refs, strict=True)}
        scored = []
        for i, (c, v) in enumerate(checks):
            # The candidate's offset was picked as the best of thousands, so its hits are biased
            # upward; the other tracks' candidates were picked the same way and are (at least all
            # but one) unrelated: their hits are the chance level *after* selection. Copies of
            # this very recording (the same audio under other ids) are not chance: left out.
            rivals = [j for j in range(len(checks)) if copies[j] != copies[i]]
            others = [checks[j][1].hits * v.peaks / checks[j][1].peaks for j in rivals if checks[j][1].peaks]
            other_votes = [float(checks[j][0].votes) for j in rivals]
            peaks_score = v.score
            peaks_lam = v.null_mean
            votes_lam = max(float(c.runner_up), 1.0)
            if len(others) >= MIN_OTHERS:
                level = _at_calibration(_chance(others), groups, len(others))
                peaks_lam = max(level, v.null_mean, 0.5)
                peaks_score = min(peaks_score, -poisson_tail_log10(v.hits, peaks_lam))
                votes_lam = max(votes_lam, _at_calibration(_chance(other_votes), groups, len(other_votes)))
            votes_score = -poisson_tail_log10(c.votes, votes_lam)
            if trace is not None:
                trace.parts[c.track_id] = ScoreParts(peaks_score, peaks_lam, votes_score, votes_lam, copies[i])
            scored.append(Scored(c, v, max(peaks_score, votes_score) - correction, refs[i]))
        scored.sort(key=lambda x: -x.score)
        return scored, hits.budget_dropped > 0


def _copies(cands: list[Candidate], checks: list[Verification], refs: list[np.ndarray], frames: int) -> list[int]:
    """A group label per candidate: candidates whose references hold the same audio where the
    query aligns with them (most of their peaks coincide there) share one label."""
    group = list(range(len(cands)))

    def root(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    for i in range(len(cands)):
        for j in range(i + 1, len(cands)):
            # Only two candidates that each stand out against their own null can be copies of
            # what the query plays (this also keeps the check off the common, unrelated case).
            if root(i) == root(j) or min(checks[i].score, checks[j].score) < COPY_MIN_SCORE:
                continue
            a, b = cands[i], cands[j]
            if shared_peaks(refs[i], a.offset, refs[j], b.offset, frames) >= SAME_AUDIO_SHARE:
                group[root(j)] = root(i)
    return [root(i) for i in range(len(cands))]
