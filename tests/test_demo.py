"""The demo music generator: determinism, variety, levels, room simulation and catalog files."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from soundmark.demo import (
    DEMO_TRACKS,
    build_demo_catalog,
    compose_piece,
    over_the_air,
    over_the_air_parts,
    write_wav,
)
from soundmark.demo import catalog as demo_catalog

SR = 22050
PEAK = 10 ** (-1 / 20)


def log_spectrogram(x: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """dB magnitude, 100 Hz–5 kHz, floored 80 dB below the maximum."""
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(n_fft, 1 / SR)
    db = 20 * np.log10(mag[:, (f >= 100) & (f <= 5000)] + 1e-9)
    return np.maximum(db, db.max() - 80)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two log spectrograms once each bin's average level is removed.

    Without that, any two synth pieces correlate through their shared spectral tilt (loud lows,
    quiet highs); what a landmark fingerprint sees, and what must differ, is how the spectrum moves.
    """
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def excerpt(x: np.ndarray, start: float, seconds: float = 3.0) -> np.ndarray:
    return x[round(start * SR) : round((start + seconds) * SR)]


@pytest.fixture(scope="module")
def piece() -> np.ndarray:
    return compose_piece(int(DEMO_TRACKS[2]["seed"]), 45.0)


def test_same_seed_same_piece() -> None:
    a = compose_piece(7, 4.0)
    b = compose_piece(7, 4.0)
    assert a.dtype == np.float32
    assert a.shape == (4 * SR,)
    assert np.array_equal(a, b)


def test_seeds_give_distinct_pieces() -> None:
    seeds = [int(t["seed"]) for t in DEMO_TRACKS[:4]] + [1, 2]
    specs = {s: log_spectrogram(compose_piece(s, 12.0)) for s in seeds}
    for s, t in itertools.combinations(seeds, 2):
        assert similarity(specs[s], specs[t]) < 0.5, (s, t)


def test_excerpts_do_not_repeat_within_a_piece(piece: np.ndarray) -> None:
    ref = log_spectrogram(excerpt(piece, 10.0))
    assert similarity(ref, log_spectrogram(excerpt(piece, 30.0))) < 0.9
    assert similarity(ref, log_spectrogram(excerpt(piece, 40.0))) < 0.9
    # Stronger: no 3 s window anywhere else (every ~93 ms) looks like the one at 10 s.
    whole = log_spectrogram(piece)
    width, k0 = ref.shape[0], round(10.0 * SR / 512)
    for k in range(0, whole.shape[0] - width, 4):
        if abs(k - k0) * 512 / SR > 1.5:
            assert similarity(ref, whole[k : k + width]) < 0.9, k * 512 / SR


def test_similarity_catches_a_loop(piece: np.ndarray) -> None:
    """The measure above can fail: a looped 4 s bar matches itself 20 s later."""
    looped = np.tile(piece[: 4 * SR], 12)
    ref = log_spectrogram(excerpt(looped, 10.0))
    assert similarity(ref, log_spectrogram(excerpt(looped, 30.0))) > 0.99


@pytest.mark.parametrize(("seed", "seconds", "rate"), [(3, 6.0, SR), (4, 0.5, SR), (5, 3.0, 8000)])
def test_peak_level(seed: int, seconds: float, rate: int) -> None:
    x = compose_piece(seed, seconds, rate)
    assert len(x) == round(seconds * rate)
    assert np.all(np.isfinite(x))
    assert np.max(np.abs(x)) == pytest.approx(PEAK, abs=0.01)


def test_zero_length_piece() -> None:
    assert compose_piece(1, 0.0).shape == (0,)


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0])
def test_over_the_air_snr(piece: np.ndarray, snr_db: float) -> None:
    clip = excerpt(piece, 20.0, 8.0)
    wet, noise = over_the_air_parts(clip, SR, seed=11, snr_db=snr_db)
    measured = 10 * np.log10(np.mean(wet.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert measured == pytest.approx(snr_db, abs=1.0)
    out = over_the_air(clip, SR, seed=11, snr_db=snr_db)
    assert out.dtype == np.float32
    assert out.shape == clip.shape
    assert np.allclose(out, wet + noise, atol=1e-6)
    assert np.max(np.abs(out)) == pytest.approx(PEAK, abs=0.01)
    # The room changed the music itself, not only added noise.
    assert abs(np.corrcoef(wet, clip)[0, 1]) < 0.99


def test_over_the_air_is_deterministic_per_seed(piece: np.ndarray) -> None:
    clip = excerpt(piece, 5.0, 4.0)
    a = over_the_air(clip, SR, seed=1)
    assert np.array_equal(a, over_the_air(clip, SR, seed=1))
    assert not np.allclose(a, over_the_air(clip, SR, seed=2))


def test_write_wav_round_trip(tmp_path: Path) -> None:
    x = np.array([0.0, 0.5, -0.5, 1.5, -1.5], dtype=np.float32)
    write_wav(tmp_path / "x.wav", x, 8000)
    with wave.open(str(tmp_path / "x.wav"), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert pcm.tolist() == [0, 16384, -16384, 32767, -32767]


def test_demo_track_metadata_is_well_formed() -> None:
    assert len({t["seed"] for t in DEMO_TRACKS}) == len(DEMO_TRACKS) >= 8
    for t in DEMO_TRACKS:
        dt.date.fromisoformat(str(t["release_date"]))
        assert re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", str(t["isrc"]))
        upc = [int(c) for c in str(t["upc"])]
        assert len(upc) == 12
        assert (3 * sum(upc[0:11:2]) + sum(upc[1:11:2]) + upc[11]) % 10 == 0
        assert all(t[k] for k in ("title", "artist", "album", "label"))


def read_wav(path: Path) -> tuple[int, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), w.getnframes()


def test_build_demo_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "demo"
    manifest = build_demo_catalog(out, seconds=30.0)
    assert manifest == out / "manifest.csv"
    with manifest.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == [
            "path",
            "title",
            "artist",
            "album",
            "release_date",
            "label",
            "isrc",
            "upc",
        ]
        rows = list(reader)
    assert [r["title"] for r in rows] == [t["title"] for t in DEMO_TRACKS]
    for row in rows:
        assert not Path(row["path"]).is_absolute()
        assert read_wav(out / row["path"]) == (SR, 30 * SR)
    assert read_wav(out / "demo-clip.wav") == (SR, 8 * SR)

    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}

    # A second run renders nothing and rewrites nothing.
    def no_render(*args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("re-rendered a file that was already up to date")

    with monkeypatch.context() as m:
        m.setattr(demo_catalog, "compose_piece", no_render)
        assert build_demo_catalog(out, seconds=30.0) == manifest
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before

    # A damaged file is rebuilt, identically.
    damaged = out / rows[0]["path"]
    damaged.write_bytes(b"not a wav")
    build_demo_catalog(out, seconds=30.0)
    assert damaged.read_bytes() == before[damaged][1]
