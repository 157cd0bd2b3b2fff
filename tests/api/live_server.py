"""A real soundmark server (uvicorn in a subprocess, on a loopback port) and helpers for API tests."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    db: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def token(self, name: str = "t", *extra: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "soundmark", "token", "create", "--db", str(self.db), "--name", name, *extra],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1]

    def log_text(self) -> str:
        return self.log.read_text()


def update_track(db: Path, title: str, **changes: object) -> None:
    """Change a stored track's metadata as an operator would (the server sees it on its next query)."""
    from dataclasses import replace

    from soundmark.fingerprint.params import FingerprintParams
    from soundmark.store import Store

    with Store(db, FingerprintParams()) as store:
        track = next(t for t in store.catalog.list_tracks() if t.meta.title == title)
        with store.writer() as writer:
            writer.update_meta(track.id, replace(track.meta, **changes))  # type: ignore[arg-type]


def start_server(db: Path, log: Path, *flags: str, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "soundmark", "serve", "--db", str(db), "--port", str(port), "--workers", "1", *flags]
    fh = open(log, "wb")  # noqa: SIM115 - closed when the server stops
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    fh.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, db, log, proc)
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {log.read_text()}")


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A permissive server: private URLs allowed (the test file server is on loopback)."""
    root = tmp_path_factory.mktemp("server")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--allow-private-urls", "--anonymous-per-day", "1000")
    yield s
    stop_server(s)


@pytest.fixture(scope="session")
def strict_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Default security settings, a small anonymous quota and a 1 MB upload cap."""
    root = tmp_path_factory.mktemp("strict")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--anonymous-per-day", "2", "--max-upload-mb", "1")
    yield s
    stop_server(s)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/redirect-to/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect-to/") :])
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="session")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A static file server on loopback: (base URL, folder it serves)."""
    root = tmp_path_factory.mktemp("www")

    def handler(*args: object, **kwargs: object) -> _Handler:
        return _Handler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()
    thread.join()


class HostRewrite(httpx.HTTPTransport):
    """Send the SDK's requests for api.audd.io / enterprise.audd.io to the server under test,
    keeping the original Host header: the SDK runs unchanged."""

    def __init__(self, base: str):
        super().__init__()
        self.target = httpx.URL(base)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self.target.host, port=self.target.port)
        return super().handle_request(request)


@pytest.fixture()
def sdk_http(server: Server) -> Iterator[httpx.Client]:
    client = httpx.Client(transport=HostRewrite(server.url), timeout=60)
    yield client
    client.close()
