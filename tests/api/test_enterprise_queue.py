"""The enterprise job queue is bounded (``SOUNDMARK_MAX_QUEUED_JOBS``): each queued job keeps its
audio on disk, so an unbounded queue is unbounded disk and work. One job past the cap is 611."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from live_server import start_server, stop_server

from support import Piece


class _Stall:
    """A loopback HTTP server whose audio download does not start until ``release`` is set."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.requested = threading.Event()
        self.release = threading.Event()
        stall = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                stall.requested.set()
                stall.release.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "audio/wav")
                self.send_header("Content-Length", str(len(stall.payload)))
                self.end_headers()
                self.wfile.write(stall.payload)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/clip.wav"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Stall:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def capped_server(built_store: Path, tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "db"
    shutil.copytree(built_store, db)
    server = start_server(db, tmp_path / "server.log", "--allow-private-urls", "--anonymous-per-day", "1000",
                          env={"SOUNDMARK_MAX_QUEUED_JOBS": "1", "SOUNDMARK_SCAN_WORKERS": "1"})  # fmt: skip
    yield server.url
    stop_server(server)


def test_a_job_past_the_queue_cap_is_611_and_the_queue_frees_up(capped_server: str, pieces: list[Piece]) -> None:
    url = capped_server
    with _Stall(pieces[0].path.read_bytes()) as stall, ThreadPoolExecutor(1) as pool:
        # The first job is queued while its audio downloads (the download is held open).
        first = pool.submit(httpx.post, f"{url}/enterprise/", data={"url": stall.url}, timeout=120)
        assert stall.requested.wait(30)
        second = httpx.post(f"{url}/enterprise/", data={"url": stall.url}, timeout=30).json()
        assert second["status"] == "error" and second["error"]["error_code"] == 611, second
        stall.release.set()
        done = first.result(timeout=120).json()
    assert done["status"] == "success" and done["result"], done
    assert any(song["title"] == pieces[0].title for chunk in done["result"] for song in chunk["songs"])
    # The queue is empty again: the next job is accepted.
    again = httpx.post(f"{url}/enterprise/", files={"file": ("c.wav", pieces[1].path.read_bytes())}, timeout=120).json()
    assert again["status"] == "success", again
