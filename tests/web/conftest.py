"""Fixtures of the browser tests: a server on the demo catalog, the fake microphone's clips,
Playwright (driving Debian's /usr/bin/chromium)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))  # live_server, for browser.py

import numpy as np
import pytest
from browser import CHROMIUM, FIRST_TITLE, WebServer, start_server, stop_server
from playwright.sync_api import Playwright, sync_playwright
from scipy.io import wavfile

from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import Store
from support import UNKNOWN_SEED, resample

MIC_RATE = 48000
LINKED_EXTERNAL = {
    "spotify_id": "4uLU6hMCjMI75M1A2tKUQC",
    "musicbrainz_recording_id": "b1a9c0e9-d987-4042-ae91-78d6a3267d69",
}


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo catalog made by ``soundmark demo`` (store, audio folder); the first track has
    provider ids (its card shows their links)."""
    root = tmp_path_factory.mktemp("web-demo")
    db, out = root / "db", root / "audio"
    subprocess.run([sys.executable, "-m", "soundmark", "demo", "--db", str(db), "--out", str(out)], check=True,
                   capture_output=True)  # fmt: skip
    with Store(db, FingerprintParams()) as store:
        track = next(t for t in store.catalog.list_tracks() if t.meta.title == FIRST_TITLE)
        with store.writer() as writer:
            writer.update_meta(track.id, replace(track.meta, external={**track.meta.external, **LINKED_EXTERNAL}))
    return db, out


@pytest.fixture(scope="session")
def web(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    root = tmp_path_factory.mktemp("web-server")
    db = root / "db"
    shutil.copytree(demo[0], db)
    server = start_server(db, root / "server.log", "--anonymous-per-day", "1000")
    yield server
    stop_server(server)


def _noisy(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(len(x)).astype(np.float32)
    gain = np.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return (0.7 * (x + gain * noise) / max(1e-9, float(np.max(np.abs(x + gain * noise))))).astype(np.float32)


@pytest.fixture(scope="session")
def catalog_clip(demo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of the first demo track (from 12 s in) at 48 kHz with noise at 10 dB SNR: what a
    microphone in a room hears."""
    rate, data = wavfile.read(next((demo[1] / "tracks").glob("01-*.wav")))
    x = data.astype(np.float32) / 32768.0 if data.dtype == np.int16 else data.astype(np.float32)
    if x.ndim > 1:
        x = x.mean(axis=1)
    clip = resample(x[int(12 * rate) : int(32 * rate)], rate, MIC_RATE)
    path = tmp_path_factory.mktemp("mic") / "catalog-clip.wav"
    write_wav(path, _noisy(clip, 10.0, 1), MIC_RATE)
    return path


@pytest.fixture(scope="session")
def unknown_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s of music composed the same way but in no catalog, at 48 kHz, with the same noise."""
    path = tmp_path_factory.mktemp("mic") / "unknown-clip.wav"
    write_wav(path, _noisy(compose_piece(UNKNOWN_SEED, 20.0, MIC_RATE), 10.0, 2), MIC_RATE)
    return path


@pytest.fixture(scope="session")
def pw() -> Iterator[Playwright]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it)"
    with sync_playwright() as p:
        yield p
