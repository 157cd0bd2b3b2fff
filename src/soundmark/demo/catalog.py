"""The demo catalog: procedurally composed tracks, their manifest and an over-the-air demo clip.

``soundmark demo`` (and so ``make run``) builds it on a fresh machine with no music from the user;
re-running is fast because every output is stamped with the settings that produced it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from soundmark.demo.compose import GENERATOR_VERSION, compose_piece
from soundmark.demo.room import over_the_air


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    pcm = np.round(np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM mono WAV; values outside [-1, 1] are clipped."""
    Path(path).write_bytes(_wav_bytes(samples, sample_rate))


DEMO_TRACKS: list[dict[str, str | int]] = [
    {
        "seed": 101, "title": "Phase Locked Heart", "artist": "The Sine Waves",
        "album": "Constructive Interference", "release_date": "2019-02-14", "label": "Landmark Records",
        "isrc": "XXSM11900001", "upc": "860001234565",
    },
    {
        "seed": 202, "title": "Fold Me Back Down", "artist": "Nyquist & The Aliases",
        "album": "Above Half the Rate", "release_date": "2020-06-05", "label": "Constellation Tapes",
        "isrc": "XXSM12000002", "upc": "860001234572",
    },
    {
        "seed": 303, "title": "Transform Tonight", "artist": "DJ Fourier",
        "album": "Frequency Domain", "release_date": "2021-10-29", "label": "Landmark Records",
        "isrc": "XXSM12100003", "upc": "860001234589",
    },
    {
        "seed": 404, "title": "Overlap and Add", "artist": "Hann Solo",
        "album": "Window Functions", "release_date": "2022-03-18", "label": "Hashbrown Audio",
        "isrc": "XXSM12200004", "upc": "860001234596",
    },
    {
        "seed": 505, "title": "One Over F", "artist": "Pink Noise Collective",
        "album": "Equal Energy per Octave", "release_date": "2022-11-11", "label": "Constellation Tapes",
        "isrc": "XXSM12200005", "upc": "860001234602",
    },
    {
        "seed": 606, "title": "Cutoff at Midnight", "artist": "The Low-Pass Filters",
        "album": "Rolloff", "release_date": "2023-07-07", "label": "Hashbrown Audio",
        "isrc": "XXSM12300006", "upc": "860001234619",
    },
    {
        "seed": 707, "title": "Every Harmonic Counts", "artist": "Sawtooth Sisters",
        "album": "Band-Limited", "release_date": "2024-04-26", "label": "Landmark Records",
        "isrc": "XXSM12400007", "upc": "860001234626",
    },
    {
        "seed": 808, "title": "Plucked String Theory", "artist": "Karplus & Strong",
        "album": "Delay Line Blues", "release_date": "2025-09-12", "label": "Constellation Tapes",
        "isrc": "XXSM12500008", "upc": "860001234633",
    },
]  # fmt: skip

# The demo query: a noisy phone recording of part of the third track.
DEMO_CLIP_TRACK = 2
DEMO_CLIP_START = 20.0
DEMO_CLIP_SECONDS = 8.0
DEMO_CLIP_NOISE_SEED = 2600
DEMO_SAMPLE_RATE = 22050
MANIFEST_FIELDS = ("path", "title", "artist", "album", "release_date", "label", "isrc", "upc")
_STAMP = ".demo-build.json"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def track_filename(index: int) -> str:
    """Catalog-relative path of DEMO_TRACKS[index]'s WAV."""
    return f"tracks/{index + 1:02d}-{_slug(str(DEMO_TRACKS[index]['title']))}.wav"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_demo_catalog(out_dir: Path, seconds: float = 60.0) -> Path:
    """Render the demo tracks, their manifest and a noisy demo query; returns the manifest path.

    A stamp file remembers what produced each output and its hash, so a re-run only hashes the
    files it finds and renders nothing that is already there and unchanged.
    """
    out_dir = Path(out_dir)
    (out_dir / "tracks").mkdir(parents=True, exist_ok=True)
    stamp_path = out_dir / _STAMP
    try:
        old = json.loads(stamp_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        old = {}
    new: dict[str, dict[str, str]] = {}
    sr = DEMO_SAMPLE_RATE

    def ensure(rel: str, key: str, render: Callable[[], bytes]) -> None:
        path = out_dir / rel
        entry = old.get(rel) if isinstance(old, dict) else None
        if isinstance(entry, dict) and entry.get("key") == key and path.is_file():
            sha = _sha256(path)
            if sha == entry.get("sha256"):
                new[rel] = {"key": key, "sha256": sha}
                return
        data = render()
        if not (path.is_file() and path.read_bytes() == data):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        new[rel] = {"key": key, "sha256": hashlib.sha256(data).hexdigest()}

    rows = []
    for i, track in enumerate(DEMO_TRACKS):
        rel = track_filename(i)
        seed = int(track["seed"])
        key = f"v{GENERATOR_VERSION}:piece:{seed}:{seconds!r}:{sr}"

        def render_piece(seed: int = seed) -> bytes:
            return _wav_bytes(compose_piece(seed, seconds, sr), sr)

        ensure(rel, key, render_piece)
        rows.append({"path": rel, **{f: str(track[f]) for f in MANIFEST_FIELDS[1:]}})

    clip_seed = int(DEMO_TRACKS[DEMO_CLIP_TRACK]["seed"])
    clip_len = min(DEMO_CLIP_SECONDS, seconds)
    clip_start = min(DEMO_CLIP_START, max(0.0, seconds - clip_len))

    def render_clip() -> bytes:
        piece = compose_piece(clip_seed, seconds, sr)
        a = round(clip_start * sr)
        excerpt = piece[a : a + round(clip_len * sr)]
        return _wav_bytes(over_the_air(excerpt, sr, DEMO_CLIP_NOISE_SEED, snr_db=5.0), sr)

    clip_key = (
        f"v{GENERATOR_VERSION}:clip:{clip_seed}:{seconds!r}:{sr}:{clip_start!r}:{clip_len!r}"
        f":{DEMO_CLIP_NOISE_SEED}:snr5"
    )
    ensure("demo-clip.wav", clip_key, render_clip)

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    manifest = out_dir / "manifest.csv"
    text = buf.getvalue()
    if not (manifest.is_file() and manifest.read_text(encoding="utf-8") == text):
        manifest.write_text(text, encoding="utf-8")

    stamp = json.dumps({"version": GENERATOR_VERSION, "files": new}, indent=1, sort_keys=True)
    if not (stamp_path.is_file() and stamp_path.read_text() == stamp):
        stamp_path.write_text(stamp)
    return manifest
