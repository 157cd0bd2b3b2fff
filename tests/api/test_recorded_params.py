"""A store is served with the fingerprint parameters it recorded, not with this engine's
defaults: the CLI, the API's workers and the scan all open it through ``recorded_params``."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from live_server import start_server, stop_server

from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE
from soundmark.demo import write_wav
from soundmark.errors import ParamsMismatchError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, ingest
from soundmark.store import Store, recorded_params
from support import PIECE_RATE, Piece

# Index-side parameters other than the defaults: hashes and postings differ from a default store.
CUSTOM = dataclasses.replace(FingerprintParams(), fanout=4, ref_peaks_per_second=18.0, max_dt=47)


@pytest.fixture()
def custom_store(pieces: list[Piece], tmp_path: Path) -> Path:
    db = tmp_path / "custom-db"
    items = [IngestItem(p.path, TrackMeta(title=p.title, artist="Test Band")) for p in pieces[:3]]
    with Store(db, CUSTOM, create=True) as store:
        assert len(ingest(store, items, processes=1).added) == 3
    return db


def test_recorded_params_are_the_ones_the_store_was_built_with(custom_store: Path, tmp_path: Path) -> None:
    got = recorded_params(custom_store)
    assert got.index_fields() == CUSTOM.index_fields()
    assert got.signature() == CUSTOM.signature() != FingerprintParams().signature()
    assert got.warp_grid == FingerprintParams().warp_grid  # query-only fields stay this engine's
    assert recorded_params(tmp_path / "nothing-here") == FingerprintParams()
    with pytest.raises(ParamsMismatchError):  # opening it with the defaults is what used to happen
        Store(custom_store, FingerprintParams())


def test_a_store_of_another_hash_layout_is_refused_clearly(custom_store: Path) -> None:
    conn = sqlite3.connect(custom_store / CATALOG_FILE)
    with conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'fingerprint_params'").fetchone()
        stored = json.loads(row[0])
        stored["hash_version"] = 1
        conn.execute("UPDATE meta SET value = ? WHERE key = 'fingerprint_params'", (json.dumps(stored),))
    conn.close()
    with pytest.raises(ParamsMismatchError, match="hash layout v1"):
        recorded_params(custom_store)


def test_cli_and_server_serve_a_store_built_with_other_parameters(
    custom_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    clip = tmp_path / "clip.wav"
    write_wav(clip, pieces[1].samples[10 * PIECE_RATE : 18 * PIECE_RATE], PIECE_RATE)
    out = subprocess.run(
        [sys.executable, "-m", "soundmark", "recognize", "--db", str(custom_store), "--json", str(clip)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])["result"]
    assert result["title"] == pieces[1].title and abs(result["offset"] - 10) < 0.5
    server = start_server(custom_store, tmp_path / "server.log", "--anonymous-per-day", "100")
    try:
        body = httpx.post(server.url, files={"file": ("clip.wav", clip.read_bytes())}, timeout=60).json()
    finally:
        stop_server(server)
    assert body["status"] == "success" and body["result"]["title"] == pieces[1].title, body
