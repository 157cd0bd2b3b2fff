"""End to end: ingest synthetic pieces, recognise degraded excerpts, reject unknown audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import fftconvolve

from soundmark.demo import over_the_air
from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.recognizer import Recognizer, format_timecode
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample

SR = FingerprintParams().sample_rate


def excerpt(piece: Piece, start: float, seconds: float) -> np.ndarray:
    a = int(start * PIECE_RATE)
    return piece.samples[a : a + int(seconds * PIECE_RATE)]


def to_engine(x: np.ndarray) -> np.ndarray:
    return resample(x, PIECE_RATE, SR)


def add_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    # Pink-ish noise: most of its power where the music is.
    noise = np.cumsum(noise) * 0.02 + noise * 0.5
    noise -= noise.mean()
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (x + gain * noise).astype(np.float32)


def reverb(x: np.ndarray, rt60: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[0] = 3.0
    y = fftconvolve(x, ir)[: len(x)]
    return (y / np.max(np.abs(y))).astype(np.float32)


def best(store: Store, x: np.ndarray):  # type: ignore[no-untyped-def]
    matches = Recognizer(store).recognize(x)
    return matches[0] if matches else None


@pytest.mark.parametrize("index,start", [(0, 5.0), (2, 17.5), (4, 30.0)])
def test_clean_excerpt_found_with_offset(store: Store, pieces: list[Piece], index: int, start: float) -> None:
    m = best(store, to_engine(excerpt(pieces[index], start, 5.0)))
    assert m is not None
    assert m.track.meta.title == pieces[index].title
    assert abs(m.offset_seconds - start) < 0.5


def test_a_song_beginning_inside_the_query_says_where(store: Store, pieces: list[Piece]) -> None:
    """3 s of quiet noise, then the song from its start: the offset is AudD's 0 and
    ``lead_seconds`` places the song's beginning 3 s into the query (a stream's "first heard")."""
    song = to_engine(excerpt(pieces[1], 0.0, 6.0))
    x = add_noise(np.concatenate([np.zeros(3 * SR, np.float32), song]), 30.0, seed=9)
    m = best(store, x)
    assert m is not None and m.track.meta.title == pieces[1].title
    assert m.offset_seconds == 0.0
    assert abs(m.lead_seconds - 3.0) < 0.5


@pytest.mark.parametrize("index", range(6))
def test_noise_at_0db(store: Store, pieces: list[Piece], index: int) -> None:
    x = add_noise(to_engine(excerpt(pieces[index], 12.0, 8.0)), 0.0, seed=index)
    m = best(store, x)
    assert m is not None and m.track.meta.title == pieces[index].title
    assert abs(m.offset_seconds - 12.0) < 0.5


@pytest.mark.parametrize("index", [1, 3, 5])
def test_reverb_and_noise(store: Store, pieces: list[Piece], index: int) -> None:
    x = reverb(to_engine(excerpt(pieces[index], 20.0, 8.0)), rt60=0.6, seed=index)
    m = best(store, add_noise(x, 10.0, seed=100 + index))
    assert m is not None and m.track.meta.title == pieces[index].title
    assert abs(m.offset_seconds - 20.0) < 0.5


def test_phone_in_a_room(store: Store, pieces: list[Piece]) -> None:
    x = over_the_air(excerpt(pieces[2], 8.0, 8.0), PIECE_RATE, seed=5, snr_db=5.0, rt60=0.5)
    m = best(store, to_engine(x))
    assert m is not None and m.track.meta.title == pieces[2].title
    assert abs(m.offset_seconds - 8.0) < 0.5


@pytest.mark.parametrize("rate", [1.03, 0.97])
def test_radio_speed_change(store: Store, pieces: list[Piece], rate: float) -> None:
    """Played 3 % fast (or slow): time and pitch change together, as resampling does."""
    src = excerpt(pieces[1], 15.0, 8.0)
    # Playing at `rate` = the same samples read at a different clock.
    x = resample(src, round(PIECE_RATE * rate), SR)
    m = best(store, x)
    assert m is not None and m.track.meta.title == pieces[1].title
    assert abs(m.offset_seconds - 15.0) < 0.5
    assert m.time_rate == pytest.approx(rate, abs=0.016)


@pytest.mark.parametrize("rate", [1.062, 0.953, 1.018])
def test_speed_between_and_beyond_the_first_grid(store: Store, pieces: list[Piece], rate: float) -> None:
    """Rates the first grid (1, ±3 %) misses: the second, wide-grid search finds them, and the
    answer's speed is estimated between the wide grid's points (1.5 % apart) to within 0.5 %."""
    src = excerpt(pieces[2], 12.0, 8.0)
    x = resample(src, round(PIECE_RATE * rate), SR)
    m = best(store, x)
    assert m is not None and m.track.meta.title == pieces[2].title
    assert abs(m.offset_seconds - 12.0) < 0.5
    assert m.time_rate == pytest.approx(rate, rel=0.005)
    assert m.freq_rate == pytest.approx(rate, rel=0.005)


def test_pitch_shift_one_semitone(store: Store, pieces: list[Piece]) -> None:
    """Pitch up a semitone with tempo kept: shift every frequency of the STFT by 2**(1/12)."""
    x = to_engine(excerpt(pieces[3], 10.0, 8.0))
    n_fft, hop = 2048, 512
    win = np.hanning(n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * win
    spec = np.fft.rfft(frames, axis=1)
    ratio = 2 ** (1 / 12)
    src_bins = np.arange(spec.shape[1]) / ratio
    lo = np.floor(src_bins).astype(int)
    frac = src_bins - lo
    ok = lo + 1 < spec.shape[1]
    mag = np.abs(spec)
    shifted = np.zeros_like(mag)
    shifted[:, ok] = mag[:, lo[ok]] * (1 - frac[ok]) + mag[:, lo[ok] + 1] * frac[ok]
    rng = np.random.default_rng(0)
    phase = np.exp(2j * np.pi * rng.random(shifted.shape))
    y = np.zeros(len(x) + n_fft)
    for i, row in enumerate(np.fft.irfft(shifted * phase, n=n_fft, axis=1)):
        y[i * hop : i * hop + n_fft] += row * win
    m = best(store, y[: len(x)].astype(np.float32))
    assert m is not None and m.track.meta.title == pieces[3].title
    assert m.freq_rate == pytest.approx(ratio, abs=0.01)


def test_tempo_up_five_percent(store: Store, pieces: list[Piece]) -> None:
    """Time-stretched 5 % faster with pitch kept (STFT read with a longer hop than it is written)."""
    x = to_engine(excerpt(pieces[5], 10.0, 9.0))
    n_fft, hop_out = 1024, 256
    hop_in = round(hop_out * 1.05)
    win = np.hanning(n_fft)
    starts = range(0, len(x) - n_fft, hop_in)
    mags = [np.abs(np.fft.rfft(x[a : a + n_fft] * win)) for a in starts]
    rng = np.random.default_rng(1)
    y = np.zeros(len(mags) * hop_out + n_fft)
    for i, mag in enumerate(mags):
        frame = np.fft.irfft(mag * np.exp(2j * np.pi * rng.random(len(mag))), n=n_fft)
        y[i * hop_out : i * hop_out + n_fft] += frame * win
    m = best(store, y.astype(np.float32))
    assert m is not None and m.track.meta.title == pieces[5].title
    assert abs(m.offset_seconds - 10.0) < 0.5


def test_unknown_piece_is_not_matched(store: Store, unknown_piece: np.ndarray) -> None:
    for start in (0.0, 12.0, 25.0):
        x = to_engine(unknown_piece[int(start * PIECE_RATE) : int((start + 8) * PIECE_RATE)])
        assert Recognizer(store).recognize(x) == []
        assert Recognizer(store).recognize(add_noise(x, 10.0, seed=3)) == []


def test_noise_and_silence_are_not_matched(store: Store) -> None:
    rng = np.random.default_rng(1)
    assert Recognizer(store).recognize(rng.standard_normal(SR * 8).astype(np.float32) * 0.1) == []
    assert Recognizer(store).recognize(np.zeros(SR * 8, dtype=np.float32)) == []
    assert Recognizer(store).recognize(np.zeros(100, dtype=np.float32)) == []


def test_alternatives_never_repeat_the_best(store: Store, pieces: list[Piece]) -> None:
    matches = Recognizer(store).recognize(to_engine(excerpt(pieces[0], 3.0, 10.0)))
    ids = [m.track.id for m in matches]
    assert len(ids) == len(set(ids)) >= 1


@pytest.mark.parametrize(
    "seconds,code", [(0, "00:00"), (83.7, "01:24"), (83.2, "01:23"), (3599, "59:59"), (3725, "01:02:05")]
)
def test_timecode(seconds: float, code: str) -> None:
    assert format_timecode(seconds) == code


def test_a_query_the_budget_starved_is_searched_again_with_a_wider_one(built_store: Path, pieces: list[Piece]) -> None:
    """A budget so tight that the first search reads almost nothing (as a common catalog's long
    lists would leave a noisy query): the retry's wider budget finds the song; without a retry
    nothing is found."""
    x = add_noise(to_engine(excerpt(pieces[4], 20.0, 6.0)), 5.0, seed=4)
    starved = replace(FingerprintParams(), query_postings_per_hash=0.001)
    for retry, found in ((0.0, False), (256.0, True)):
        with Store(built_store, replace(starved, query_postings_per_hash_retry=retry)) as s:
            matches = Recognizer(s).recognize(x)
        assert bool(matches) is found, retry
        if found:
            assert matches[0].track.meta.title == pieces[4].title
            assert abs(matches[0].offset_seconds - 20.0) < 0.5
