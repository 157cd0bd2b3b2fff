"""Why it matched: the evidence of one recognition agrees with what the recognizer decided."""

from __future__ import annotations

import json

import numpy as np
import pytest

from soundmark.fingerprint.extract import query_fingerprint
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins
from soundmark.match.explain import (
    BELOW_SCORE,
    BELOW_VOTES,
    LOST,
    MATCH,
    agreeing_peaks,
    explain_print,
    explain_samples,
)
from soundmark.match.recognizer import MatchSettings, Recognizer, ScoreTrace
from soundmark.match.verify import verify_alignment
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample

PARAMS = FingerprintParams()
SR = PARAMS.sample_rate


def clip(samples: np.ndarray, start: float, seconds: float, snr_db: float | None = None, seed: int = 0) -> np.ndarray:
    a = int(start * PIECE_RATE)
    x = resample(samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE, SR)
    if snr_db is None:
        return x
    noise = np.random.default_rng(seed).standard_normal(len(x)).astype(np.float32)
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + gain * noise).astype(np.float32)


@pytest.mark.parametrize("index,start", [(1, 12.0), (4, 25.0)])
def test_noisy_clip_is_explained_with_its_track_and_offset(
    store: Store, pieces: list[Piece], index: int, start: float
) -> None:
    recognizer = Recognizer(store)
    x = clip(pieces[index].samples, start, 8.0, snr_db=3.0, seed=index)
    e = explain_samples(recognizer, x)
    matches = recognizer.recognize(x)
    assert e.matched and e.best is not None
    assert e.best.title == pieces[index].title == matches[0].track.meta.title
    assert e.best.verdict == MATCH
    assert abs(e.best.offset_seconds - start) < 0.5
    assert e.best.score == pytest.approx(matches[0].score, abs=0.051)  # Match rounds to 0.1
    assert e.best.score is not None and e.best.score >= e.min_score
    assert "1 in" in e.meaning and f"{e.min_score:g}" in e.meaning
    # The histogram's winning bin is the vote window the candidate won with, and it stands out.
    h = e.histogram
    assert h is not None
    assert int(h.counts[h.winner]) == e.best.votes == matches[0].votes
    assert abs(float(h.starts[h.winner]) + h.bin_seconds / 2 - start) < 0.5
    assert h.counts[h.winner] > 3 * np.delete(h.counts, h.winner).max()
    # Agreeing peaks: many of the query's, and the reference's lie on the query's clock.
    a = e.alignment
    assert a is not None
    assert len(a.query_t) == e.query_peaks
    assert int(a.agree.sum()) == e.best.agreeing > 0.2 * e.query_peaks
    assert a.ref_t.min() >= -0.1 and a.ref_t.max() <= e.duration_seconds + 0.1
    assert a.query_hz.min() >= 140 and a.query_hz.max() <= 3810  # the peak band (fmin, fmax) in whole bins
    # Agreeing query peaks really sit on a reference peak on the query's clock (±1 frame, ±1 bin).
    hz = SR / PARAMS.n_fft
    for t, f in zip(a.query_t[a.agree][:50], a.query_hz[a.agree][:50], strict=True):
        near = (np.abs(a.ref_t - t) <= 1.5 * PARAMS.frame_seconds) & (np.abs(a.ref_hz - f) <= 1.5 * hz)
        assert near.any()
    doc = json.loads(json.dumps(e.to_dict()))
    assert doc["best"]["title"] == pieces[index].title
    assert doc["histogram"]["winner_votes"] == e.best.votes


def test_agreement_counts_what_verification_counts(store: Store, pieces: list[Piece]) -> None:
    """The peak-by-peak test gives verify_alignment's hits and peaks for every verified candidate."""
    qp = query_fingerprint(clip(pieces[2].samples, 5.0, 8.0, snr_db=0.0, seed=7), PARAMS)
    trace = ScoreTrace()
    scored = Recognizer(store).score_print(qp, trace=trace)
    assert len(scored) >= 3
    lo = band_bins(PARAMS)[0]
    for x in scored:
        c, v = x.candidate, x.verification
        w = qp.warps[c.rate_idx]
        ref = store.index.track_peaks(c.track_id)
        agree, inside = agreeing_peaks(qp.peaks, ref, w.time_rate, w.freq_rate, c.offset, lo)
        assert (int(agree.sum()), int(inside.sum())) == (v.hits, v.peaks)
        again = verify_alignment(qp.peaks, ref, w.time_rate, w.freq_rate, c.offset, lo)
        assert again == v


def test_a_trace_leaves_the_answer_unchanged(store: Store, pieces: list[Piece]) -> None:
    r = Recognizer(store)
    qp = query_fingerprint(clip(pieces[0].samples, 20.0, 6.0, snr_db=5.0), PARAMS)
    trace = ScoreTrace()
    assert r.recognize_print(qp, trace=trace) == r.recognize_print(qp)
    assert trace.reported and trace.pairs is not None and trace.parts


def test_a_miss_lists_its_candidates_and_why_each_was_rejected(store: Store, unknown_piece: np.ndarray) -> None:
    e = explain_samples(Recognizer(store), clip(unknown_piece, 10.0, 8.0))
    assert not e.matched
    assert e.candidates and e.best is e.candidates[0]
    for c in e.candidates:
        assert c.verdict in (BELOW_VOTES, BELOW_SCORE, LOST)
        assert c.reason
        if c.verified:
            assert c.score is not None and c.score < e.min_score
            assert f"{c.score:.1f} < {e.min_score:g}" in c.reason
        else:
            assert c.votes < e.min_votes and f"{e.min_votes} are needed" in c.reason
    assert e.histogram is not None and e.alignment is not None  # the strongest one, drawn as well
    assert "a match needs" in e.meaning or "votes needed" in e.meaning


def test_min_votes_rejection_is_told(store: Store, pieces: list[Piece]) -> None:
    """With min votes set past what any candidate reaches, every candidate is 'below min votes'."""
    r = Recognizer(store, MatchSettings(min_votes=100_000))
    e = explain_samples(r, clip(pieces[3].samples, 8.0, 6.0))
    assert not e.matched and e.candidates
    assert {c.verdict for c in e.candidates} == {BELOW_VOTES}
    assert "100000 aligned votes needed" in e.meaning


def test_silence_has_no_candidates(store: Store) -> None:
    e = explain_print(Recognizer(store), query_fingerprint(np.zeros(SR * 5, dtype=np.float32), PARAMS))
    assert not e.matched and e.candidates == [] and e.best is None
    assert e.histogram is None and e.alignment is None
    assert "no candidate" in e.meaning
