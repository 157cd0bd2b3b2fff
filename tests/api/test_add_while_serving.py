"""While ``soundmark add`` (another process) writes to the server's store, no request waits for it.

A real server and a real add run of generated audio on the same ``--db``; meanwhile clients keep
asking /healthz, /metrics and an authenticated recognize (a CLI-made token with a monthly quota),
and a token with a small quota is used past its limit. On this machine an add's commits hold the
write lock for well under a second, so in the middle of the run another process also holds it for
``HOLD_S`` seconds, as an add's commit or compaction does on a large catalog or a slow disk.
Every answer must be right, and the worst latency far below the add's duration and below an
absolute bound under ``HOLD_S`` and an order of magnitude under the catalog's busy timeout (30 s):
a request that waited for the write lock would show. This is a functional property (nothing on
the request path waits for the writer), not a speed figure: benchmarks/write_contention.py
measures the latencies.
"""

from __future__ import annotations

import fcntl
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
from contention import Recorder, hold_write_lock, probe_loop, recognize_loop, start_add, wav_bytes, write_tracks
from live_server import start_server, stop_server

from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.demo import compose_piece
from soundmark.store import LOCK_FILE
from support import PIECE_RATE, Piece

BASES, PER_BASE = 6, 8  # 48 tracks, about 1.8 h of audio: an add run of tens of seconds here
WORST_S = 2.0  # an order of magnitude under busy_timeout, and under the whole add run
HOLD_S = 5.0  # another process's write transaction in the middle of the add
SMALL_QUOTA = 5


def test_requests_never_wait_for_an_add_in_another_process(
    built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    write_tracks(tmp_path / "audio", bases=BASES, per_base=PER_BASE)
    piece = pieces[0]
    clip = wav_bytes(piece.samples[5 * PIECE_RATE : 11 * PIECE_RATE], PIECE_RATE)
    server = start_server(db, tmp_path / "server.log")
    rec = Recorder()
    stop = threading.Event()
    try:
        token = server.token("hammer", "--limit-per-month", "1000000")
        small = server.token("small", "--limit-per-month", str(SMALL_QUOTA))
        with httpx.Client(timeout=60) as warm:  # the first recognition loads the workers' index
            assert (
                warm.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip)}).json()[
                    "result"
                ]["title"]
                == piece.title
            )
        clients = [httpx.Client(timeout=60) for _ in range(3)]
        add = start_add(db, tmp_path / "audio", tmp_path / "add.log", batch=4)
        started = time.monotonic()
        threads = [
            threading.Thread(target=probe_loop, args=(clients[0], server.url, rec, stop)),
            threading.Thread(target=recognize_loop, args=(clients[1], server.url, token, clip, piece.title, rec, stop)),
        ]
        for t in threads:
            t.start()
        time.sleep(2.0)
        holder = hold_write_lock(db, HOLD_S)
        codes = []  # the small quota, used past its limit while the lock is held
        for _ in range(SMALL_QUOTA + 3):
            body = clients[2].post(server.url + "/", data={"api_token": small}, files={"file": ("c.wav", clip)}).json()
            codes.append(0 if body["status"] == "success" else body["error"]["error_code"])
        holder.communicate(timeout=60)  # waits, and closes its pipe
        add.wait(timeout=900)
        add_seconds = time.monotonic() - started
        stop.set()
        for t in threads:
            t.join()
        final = clients[0].get(server.url + "/healthz").json()
        for c in clients:
            c.close()
    finally:
        stop.set()
        stop_server(server)

    add_log = (tmp_path / "add.log").read_text()
    assert add.returncode == 0, add_log
    assert holder.returncode == 0
    assert f"added {BASES * PER_BASE} tracks" in add_log, add_log
    assert final["tracks"] == len(pieces) + BASES * PER_BASE  # the server sees what the add committed
    assert add_seconds >= 10, f"the add took {add_seconds:.1f} s: too short to contend with"

    wrong = [a for a in rec.answers if not a.ok]
    assert not wrong, wrong[:5]
    assert codes == [0] * SMALL_QUOTA + [902] * 3
    for kind in ("healthz", "metrics", "recognize"):
        assert len(rec.of(kind)) >= 10, f"too few {kind} requests during the add"
    worst = max(rec.answers, key=lambda a: a.seconds)
    assert worst.seconds < min(WORST_S, add_seconds / 10), (worst, add_seconds)


def test_an_upload_waiting_for_the_store_lock_holds_up_no_other_write(
    built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    """``soundmark add`` holds the store's file lock for its whole run: an upload (which must
    write a segment under that lock) waits for it, asleep, while the writer thread keeps writing
    (here: the usage counts of recognitions meanwhile, visible to another process), and finishes
    once the lock is free; the uploaded audio is then recognised under its audio_id."""
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    song = compose_piece(9321, 30.0, PIECE_RATE)
    query = wav_bytes(song[12 * PIECE_RATE : 18 * PIECE_RATE], PIECE_RATE)
    clip = wav_bytes(pieces[1].samples[5 * PIECE_RATE : 11 * PIECE_RATE], PIECE_RATE)
    server = start_server(db, tmp_path / "server.log")
    answers: list[dict[str, object]] = []
    try:
        token = server.token("writer")
        with open(db / LOCK_FILE, "a+") as lock, httpx.Client(timeout=60) as http:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # as a running `soundmark add` does

            def upload() -> None:
                files = {"file": ("song.wav", wav_bytes(song, PIECE_RATE))}
                answers.append(http.post(server.url + "/upload/", data={"api_token": token, "audio_id": "77"},
                                         files=files).json())  # fmt: skip

            uploading = threading.Thread(target=upload)
            uploading.start()
            with httpx.Client(timeout=60) as other:
                for _ in range(3):  # recognitions, counted while the upload waits
                    body = other.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip)})
                    assert body.json()["result"]["title"] == pieces[1].title
                counted = _wait_for(lambda: _used(db, token) >= 3)
                assert other.get(server.url + "/healthz").json()["status"] == "ok"
            waiting = uploading.is_alive() and not answers
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
            uploading.join(timeout=60)
            found = http.post(server.url + "/", data={"api_token": token}, files={"file": ("q.wav", query)}).json()
    finally:
        stop_server(server)
    assert counted, "the usage counts were not written while the upload waited for the store lock"
    assert waiting, "the upload did not wait for the store's write lock"
    assert answers == [{"status": "success", "result": None}]
    assert found["status"] == "success" and found["result"]["audio_id"] == 77


def _used(db: Path, token: str) -> int:
    with closing(Catalog(db, readonly=True)) as catalog:  # another process's view: what is committed
        info = TokenStore(catalog).authenticate(token)
    assert info is not None
    return info.used_this_month


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
