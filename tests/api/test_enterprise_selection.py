"""Enterprise chunk selection (``skip`` / ``every`` / ``limit``) against a live server: every
selected chunk carries what plays in it at the right timecode (issue 9, item 3), the plan is
finite whatever the parameters (item 1), and parameters are validated (item 8)."""

from __future__ import annotations

import csv
import io
import shutil
import time
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


def _peak_rss_mb(pid: int) -> float:
    """The largest peak resident set (VmHWM) of ``pid`` and its living descendants, in MB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    peak, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak


RSS_BOUND_MB = 600  # a server with its workers holds ~150–250 MB per process


def test_periodic_selection_without_limit_ends(sel_server: Server, ninety: bytes, pieces: list[Piece]) -> None:
    """skip=1 (and every=1&skip=2) without a limit: the plan used to never end and the server
    grew ~100 MB/s until killed. Now it is bounded by the file's duration: a prompt answer with
    every selected chunk, and the server's memory stays small."""
    body = _post(sel_server, ninety, {"skip": "1"})
    assert body["status"] == "success", body
    chunks = {c["offset"]: c["songs"][0] for c in body["result"]}  # type: ignore[union-attr]
    # Selected: 0–12 (unknown), 24–36, 48–60 (piece 0 at 4 s, 28 s), 72–84 (piece 1 at 22 s).
    assert {k: (v["title"], _seconds(v["timecode"])) for k, v in chunks.items()} == {
        "00:24": (pieces[0].title, 4),
        "00:48": (pieces[0].title, 28),
        "01:12": (pieces[1].title, 22),
    }
    body = _post(sel_server, ninety, {"every": "1", "skip": "2"})
    assert body["status"] == "success" and [c["offset"] for c in body["result"]] == ["00:36", "01:12"]  # type: ignore[union-attr]
    assert sel_server.proc.poll() is None
    assert _peak_rss_mb(sel_server.proc.pid) < RSS_BOUND_MB


@pytest.mark.parametrize(
    "params",
    [
        {"skip": "1e30"},
        {"skip": "inf"},
        {"every": "1e400"},
        {"skip": "1", "every": "1e400"},
        {"limit": "-1"},
        {"skip": "1_0"},
        {"skip": "100001"},
        {"limit": "99999999999999999999999"},
        {"skip_first_seconds": "99999999999999999999"},
        {"skip_first_seconds": "86401"},  # past the 24 hours a job analyses (max_job_hours)
        {"accurate_offsets": "maybe"},
        {"response_type": "xml"},
    ],
)
def test_hostile_parameters_are_error_50(sel_server: Server, ninety: bytes, params: dict[str, str]) -> None:
    body = _post(sel_server, ninety, params, timeout=30)
    assert body["status"] == "error" and body["error"]["error_code"] == 50, body  # type: ignore[index]
    name = list(params)[-1]  # the offending one
    assert f"`{name}`" in body["error"]["error_message"]  # type: ignore[index]
    assert body["requested_params"]["method"] == "recognize" and body["execution_time"]  # type: ignore[index]
    assert not list((sel_server.db / "jobs").glob("*.audio"))


def test_accurate_offsets_lie_inside_the_chunk_and_csv(sel_server: Server, ninety: bytes, pieces: list[Piece]) -> None:
    """``start_offset``/``end_offset`` are milliseconds inside the 12 s chunk (they used to run
    to −28 520 and 48 730); ``response_type=csv`` answers text/csv; ``execution_time`` is set."""
    body = _post(sel_server, ninety, {"accurate_offsets": "true"})
    assert body["status"] == "success" and str(body["execution_time"]).endswith("ms")
    songs = {(c["offset"], s["title"]): s for c in body["result"] for s in c["songs"]}  # type: ignore[union-attr]
    for (offset, _), song in songs.items():
        assert 0 <= song["start_offset"] <= song["end_offset"] <= 12000, (offset, song)
    # Piece 0 starts at 20 s: 8 s into the chunk at 00:12, and plays through the chunk at 00:24.
    assert abs(songs[("00:12", pieces[0].title)]["start_offset"] - 8000) <= 1500
    assert (songs[("00:24", pieces[0].title)]["start_offset"], songs[("00:24", pieces[0].title)]["end_offset"]) == (
        0,
        12000,
    )
    files = {"file": ("ninety.wav", ninety, "audio/wav")}
    r = httpx.post(f"{sel_server.url}/enterprise/", data={"response_type": "csv", "accurate_offsets": "true"},
                   files=files, timeout=60)  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["offset"], row["title"]) for row in rows] == list(songs)
    assert all(row["timecode"] == songs[(row["offset"], row["title"])]["timecode"] for row in rows)


def test_job_tracklist_of_a_selection_is_sound(sel_server: Server, ninety: bytes, pieces: list[Piece]) -> None:
    """The job behind every=1&skip=2&limit=3: its tracklist holds the selected spans' tracks,
    each segment inside a scanned span and ending after it starts (it held one ending 12 s
    before its start), and its chunk list is the synchronous answer's."""
    body = _post(sel_server, ninety, {"every": "1", "skip": "2", "limit": "3", "async": "true"})
    job_id = body["result"]["job_id"]  # type: ignore[index]
    deadline = time.monotonic() + 60
    while (job := httpx.get(f"{sel_server.url}/jobs/{job_id}", timeout=10).json()["result"])["status"] != "done":
        assert job["status"] != "failed" and time.monotonic() < deadline, job
        time.sleep(0.2)
    spans = [(0.0, 12.0), (36.0, 48.0), (72.0, 84.0)]
    assert [(t["title"], t["start"], t["end"]) for t in job["tracklist"]] == [
        (pieces[0].title, 36.0, 48.0),
        (pieces[1].title, 72.0, 84.0),
    ]
    for t in job["tracklist"]:
        assert t["start"] < t["end"] and any(a <= t["start"] and t["end"] <= b for a, b in spans), t
    assert [c["offset"] for c in job["result"]] == ["00:36", "01:12"]
