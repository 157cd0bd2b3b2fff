"""End to end: a song played on a loopback radio, monitored by ``soundmark serve``, is in today's
airplay report (the trigger copies what the real monitor writes; nothing here writes a play)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
from live_server import start_server, stop_server

from support import Piece, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "streams"))
from radio import RATE, Item, Schedule, VirtualRadio


def test_a_song_heard_on_a_stream_is_in_todays_report(built_store: Path, pieces: list[Piece], tmp_path: Path) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    piece = pieces[2]
    silence = np.zeros(20 * RATE, dtype=np.float32)  # longer than the 12 s song gap: the song ends
    radio = VirtualRadio(Schedule([Item("", silence[: 6 * RATE]), Item(piece.title, piece.samples), Item("", silence)]))
    env = {**os.environ, "SOUNDMARK_ALLOW_PRIVATE_URLS": "1", "SOUNDMARK_STREAM_SYNC_SECONDS": "1"}
    server = start_server(db, tmp_path / "server.log", env=env)
    try:
        station = server.token("station")
        admin = server.token("operator", "--scopes", "admin")
        subprocess.run(
            [sys.executable, "-m", "soundmark", "stream", "add", "--db", str(db), "--token", station,
             "--radio-id", "7", f"{radio.url}/0.mp3"], check=True, env=env, capture_output=True,
        )  # fmt: skip
        today = datetime.now(UTC).date()
        params = {"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=2)), "api_token": admin}

        def report() -> dict[str, object] | None:
            body = httpx.get(f"{server.url}/reports.json", params=params, timeout=30).json()["result"]
            return body if body["plays"] else None

        result: dict = wait_for("a play in the report", report, timeout=150, poll=2.0)  # type: ignore[assignment]
        csv_text = httpx.get(f"{server.url}/reports.csv", params=params, timeout=30).text
    finally:
        stop_server(server)
        radio.close()
    (row,) = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["title"] == piece.title][:1]
    assert row["radio_id"] == "7"
    start, length = datetime.fromisoformat(row["start"]).timestamp(), int(row["play_length"])
    # The monitor joins the looped radio wherever it is: the play is what it heard of one airing.
    aired = [t for label, t in radio.song_starts(0, start - 60, start + 60) if label == piece.title]
    airing = min(aired, key=lambda t: abs(start - t))
    assert airing - 5 <= start and start + length <= airing + piece.samples.size / RATE + 10, (row, aired)
    assert length >= 8
    assert result["top_tracks"][0]["title"] == piece.title  # type: ignore[index]
    assert [s["radio_id"] for s in result["stations"]] == [7]  # type: ignore[attr-defined]
