"""Each fingerprint stage on synthetic input, and a golden test pinning the hash format."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from soundmark.demo import compose_piece
from soundmark.fingerprint.extract import fingerprint_samples, query_fingerprint, warp_peaks
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks, peak_candidates
from soundmark.fingerprint.spectrogram import band_bins, log_spectrogram

P = FingerprintParams()
SR = P.sample_rate


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_spectrogram_shape_and_tone_bin() -> None:
    x = tone(1000.0, 2.0)
    spec = log_spectrogram(x, P)
    lo, hi = band_bins(P)
    assert spec.dtype == np.float32
    assert spec.shape == (1 + (len(x) - P.n_fft) // P.hop, hi - lo)
    peak_bin = int(np.argmax(spec.mean(axis=0))) + lo
    assert abs(peak_bin * SR / P.n_fft - 1000.0) < SR / P.n_fft


def test_spectrogram_of_too_short_input_is_empty() -> None:
    assert log_spectrogram(np.zeros(10, dtype=np.float32), P).shape[0] == 0


def test_peaks_sit_on_the_notes_of_a_melody() -> None:
    notes = [440.0, 660.0, 523.0, 1200.0, 880.0, 300.0, 2000.0, 740.0]
    x = np.concatenate([tone(f, 0.5) for f in notes])
    x += np.random.default_rng(0).standard_normal(len(x)).astype(np.float32) * 0.01
    peaks = find_peaks(log_spectrogram(x, P), P, 6)
    lo, _ = band_bins(P)
    hz = (peaks[:, 1] + lo) * SR / P.n_fft
    centre = (peaks[:, 0] * P.hop + P.n_fft / 2) / SR
    for i, f in enumerate(notes):
        during = (centre > i * 0.5 + 0.1) & (centre < i * 0.5 + 0.4)
        assert np.any(np.abs(hz[during] - f) < SR / P.n_fft), f"no peak on note {f} Hz"


def test_peak_density_is_capped_per_second() -> None:
    x = compose_piece(7, 10.0, SR)
    peaks = find_peaks(log_spectrogram(x, P), P, 10)
    per_block = np.bincount(peaks[:, 0] // round(1 / P.frame_seconds))
    assert per_block.max() <= 10
    assert np.all(np.diff(peaks[:, 0]) >= 0)


def test_silence_has_no_peaks() -> None:
    assert len(find_peaks(log_spectrogram(np.zeros(SR * 3, dtype=np.float32), P), P, 30)) == 0


def test_hash_packing_round_trip() -> None:
    times = np.array([10, 12, 20], dtype=np.int32)
    freqs = np.array([100, 90, 130], dtype=np.int32)
    h, t = pair_hashes(times, freqs, P, fanout=2)
    order = np.lexsort((h, t))
    h, t = h[order], t[order]
    assert list(t) == [10, 10, 12]
    dt = h & ((1 << P.dt_bits) - 1)
    df = ((h >> P.dt_bits) & ((1 << P.df_bits) - 1)).astype(int) - (1 << (P.df_bits - 1))
    f1 = h >> (P.dt_bits + P.df_bits)
    assert list(zip(f1.tolist(), df.tolist(), dt.tolist(), strict=True)) == [
        (100, -10, 2),
        (100, 30, 10),
        (90, 40, 8),
    ]


def test_pairs_respect_fanout_and_reach() -> None:
    times = np.arange(0, 200, 2)
    freqs = np.full(len(times), 50)
    h, t = pair_hashes(times, freqs, P, fanout=3)
    assert np.bincount(t).max() <= 3
    assert np.all((h & ((1 << P.dt_bits) - 1)) <= P.max_dt)


def test_compiled_neighbourhood_maximum_equals_scipy() -> None:
    """The query path's compiled maximum gives SciPy's candidates: on a melody, on noise with
    ties (coarse levels), on spectrograms narrower than the neighbourhood, and on row spans."""
    rng = np.random.default_rng(3)
    specs = [log_spectrogram(compose_piece(9, 6.0, SR), P), np.round(rng.normal(size=(90, 60)) * 2).astype(np.float32)]
    specs += [rng.normal(size=(4, 7)).astype(np.float32), rng.normal(size=(1, 30)).astype(np.float32)]
    for spec in specs:
        for first, stop in [(0, spec.shape[0]), (min(3, spec.shape[0]), spec.shape[0]), (0, max(0, spec.shape[0] - 2))]:
            want = peak_candidates(spec, P, first, stop, frame0=5)
            got = peak_candidates(spec, P, first, stop, frame0=5, compiled=True)
            for k in ("t", "f", "level", "prominence"):
                np.testing.assert_array_equal(getattr(got, k), getattr(want, k))
    melody = specs[0]
    np.testing.assert_array_equal(find_peaks(melody, P, 40, compiled=True), find_peaks(melody, P, 40))


def test_compiled_pairing_equals_numpy() -> None:
    """The query path's compiled pairing makes the same hashes in the same order as NumPy's, on
    a melody's peaks warped off the integer grid, with jitter, and on the edge sizes."""
    peaks = find_peaks(log_spectrogram(compose_piece(7, 10.0, SR), P), P, P.query_peaks_per_second)
    lo = band_bins(P)[0]
    cases = [(*warp_peaks(peaks, a, b, lo), j) for a, b in [(1.0, 1.0), (0.97, 0.97), (1.0, 1.0595)] for j in (0, 1)]
    cases += [(np.array([3.0]), np.array([40.0]), 0), (np.array([3.0, 3.2, 9.0]), np.array([40.0, 41.0, 200.0]), 0)]
    for t, f, jitter in cases:
        for fanout in (1, P.fanout, P.query_fanout):
            h0, t0 = pair_hashes(t, f, P, fanout, jitter)
            h1, t1 = pair_hashes(t, f, P, fanout, jitter, compiled=True)
            np.testing.assert_array_equal(h1, h0)
            np.testing.assert_array_equal(t1, t0)
    assert len(pair_hashes(*warp_peaks(peaks, 1.0, 1.0, lo), P, P.query_fanout, compiled=True)[0]) > 1000


def test_warp_maps_query_back_to_reference() -> None:
    lo, _ = band_bins(P)
    peaks = np.array([[100, 200]], dtype=np.int32)
    t, f = warp_peaks(peaks, 1.03, 1.03, lo)
    assert t[0] == np.float64(103.0)
    assert (f[0] + lo) * 1.03 == np.float64(200 + lo)


def test_query_fingerprint_covers_the_warp_grid() -> None:
    qp = query_fingerprint(compose_piece(3, 6.0, SR), P)
    assert [(w.time_rate, w.freq_rate) for w in qp.warps] == list(P.warp_grid)
    identity = qp.warps[0]
    assert len(identity.hashes) > 100 and identity.hashes.dtype == np.uint32


def test_signature_tracks_index_fields_only() -> None:
    assert dataclasses.replace(P, query_fanout=3).signature() == P.signature()
    assert dataclasses.replace(P, fanout=3).signature() != P.signature()


def test_golden_fingerprint() -> None:
    """Pins the stored format: a change here means existing indexes must be rebuilt, so bump
    FingerprintParams.hash_version alongside it."""
    fp = fingerprint_samples(compose_piece(12345, 8.0, SR), P)
    digest = hashlib.sha256(fp.hashes.tobytes() + fp.times.tobytes() + fp.peaks.tobytes()).hexdigest()
    assert (len(fp.hashes), digest[:16]) == GOLDEN


GOLDEN = (851, "d9f59d1c3adb0b4b")
