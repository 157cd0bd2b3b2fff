"""No synchronous database call on the server's event loop.

Every server refuses statements from its event loop on the ``Store``'s own connection (the one a
request could reach without the read pool: ``refuse_on_loop`` in api/app.py), so a track lookup,
a lyrics search or a job read made on the loop fails the request and is logged. Here every read
path — recognize, findLyrics, the song page, /healthz, /metrics, an enterprise job's status — is
driven against a live server while another process holds the catalog's write lock: each answers
in full (its reads go through the read pool, which never waits for a writer), and the server log
has no refused statement.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import httpx
from live_server import start_server, stop_server

from soundmark.catalog.sqlite import CATALOG_FILE
from support import Piece

REFUSED = "a synchronous database call on the event loop"


def test_every_read_path_answers_off_the_loop_while_another_process_holds_the_write_lock(
    built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    server = start_server(db, tmp_path / "server.log", "--anonymous-per-day", "1000",
                          env={"SOUNDMARK_SCAN_WORKERS": "1"})  # fmt: skip
    piece = pieces[0]
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            job = http.post("/enterprise/", data={"async": "true"},
                            files={"file": ("p.wav", piece.path.read_bytes())}).json()  # fmt: skip
            assert job["status"] == "success", job
            job_id = job["result"]["job_id"]
            for _ in range(600):  # the job's writes need the lock: let it end first
                status = http.get(f"/jobs/{job_id}").json()["result"]["status"]
                if status in ("done", "failed"):
                    break
                time.sleep(0.2)
            assert status == "done"

            other = sqlite3.connect(db / CATALOG_FILE, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process writing (`soundmark add`, say)
            try:
                found = http.post("/", files={"file": ("c.wav", piece.path.read_bytes())}).json()
                lyrics = http.get("/findLyrics/", params={"q": piece.title}).json()
                song_id = found["result"]["song_link"].rsplit("/", 1)[-1]
                page = http.get(f"/song/{song_id}")
                missing = http.get("/song/999999")
                health = http.get("/healthz").json()
                metrics = http.get("/metrics")
                view = http.get(f"/jobs/{job_id}").json()
            finally:
                other.execute("ROLLBACK")
                other.close()
        assert found["status"] == "success" and found["result"]["title"] == piece.title
        assert lyrics["status"] == "success" and lyrics["result"][0]["title"] == piece.title
        assert str(lyrics["result"][0]["song_id"]) == song_id
        assert page.status_code == 200 and piece.title in page.text and missing.status_code == 404
        assert health["status"] == "ok" and health["tracks"] == len(pieces)
        assert metrics.status_code == 200 and "soundmark_catalog_tracks" in metrics.text
        assert view["status"] == "success" and view["result"]["status"] == "done"
        assert [t["title"] for t in view["result"]["tracklist"]] == [piece.title]
    finally:
        stop_server(server)
    log = server.log_text()
    assert REFUSED not in log and "interrupted" not in log
