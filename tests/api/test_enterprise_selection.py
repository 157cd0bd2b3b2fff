"""Enterprise chunk selection (``skip`` / ``every`` / ``limit``) against a live server: every
selected chunk carries what plays in it at the right timecode (issue 9, item 3), the plan is
finite whatever the parameters (item 1), and parameters are validated (item 8)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import Server, start_server, stop_server

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece

SR = PIECE_RATE


def _seconds(mmss: str) -> int:
    out = 0
    for part in mmss.split(":"):
        out = out * 60 + int(part)
    return out


@pytest.fixture(scope="module")
def sel_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("ent-sel")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--anonymous-per-day", "1000", env={"SOUNDMARK_SCAN_WORKERS": "1"})
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def ninety(pieces: list[Piece], unknown_piece: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """90 s: 20 s of unknown music, piece 0 from 0 s (20–60 s), piece 1 from 10 s (60–90 s)."""
    x = np.concatenate([unknown_piece[: 20 * SR], pieces[0].samples[: 40 * SR], pieces[1].samples[10 * SR : 40 * SR]])
    path = tmp_path_factory.mktemp("ninety") / "ninety.wav"
    write_wav(path, x.astype(np.float32), SR)
    return path.read_bytes()


def _post(server: Server, data: bytes, params: dict[str, str], timeout: float = 60) -> dict[str, object]:
    files = {"file": ("ninety.wav", data, "audio/wav")}
    r = httpx.post(f"{server.url}/enterprise/", data=params, files=files, timeout=timeout)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_every_selected_chunk_carries_what_plays_in_it(sel_server: Server, ninety: bytes, pieces: list[Piece]) -> None:
    """every=1&skip=2&limit=3 selects the chunks at 0, 36 and 72 s (each 12 s)."""
    body = _post(sel_server, ninety, {"every": "1", "skip": "2", "limit": "3", "accurate_offsets": "true"})
    assert body["status"] == "success", body
    chunks = {c["offset"]: c["songs"] for c in body["result"]}  # type: ignore[union-attr]
    assert set(chunks) == {"00:36", "01:12"}, chunks  # 00:00 is unknown music
    expected = {"00:36": (pieces[0].title, 16), "01:12": (pieces[1].title, 22)}
    for offset, (title, timecode) in expected.items():
        best = chunks[offset][0]
        assert best["title"] == title, (offset, chunks[offset])
        assert abs(_seconds(best["timecode"]) - timecode) <= 1, (offset, best)
        for song in chunks[offset]:
            assert 0 <= song["start_offset"] <= song["end_offset"] <= 12000, (offset, song)
