"""Loopback HTTP servers for net/ tests: fixed routes (body, content type, or a redirect), optional
``Range`` support (206 answers), and a log of every request's path and Range header."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    location: str | None = None  # a redirect target
    chunked: bool = False  # no Content-Length: the body in chunks


@dataclass
class Seen:
    method: str
    path: str
    host: str
    range: str | None


class FileServer(ThreadingHTTPServer):
    """Serves ``routes`` on ``host``; ``ranges`` False makes it ignore Range (answer 200 whole)."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", ranges: bool = True):
        super().__init__((host, 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.ranges = ranges
        self.seen: list[Seen] = []
        self.posted: list[bytes] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that stop reading (caps) break the pipe; that is expected

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


@dataclass
class _Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self.server.posted.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
        self._answer("POST")

    def _answer(self, method: str) -> None:
        srv = self.server
        srv.seen.append(Seen(method, self.path, self.headers.get("Host", ""), self.headers.get("Range")))
        route = srv.routes.get(self.path.split("?", 1)[0])
        if route is None:
            reply = _Reply(404, body=b"not found")
        elif route.location is not None:
            reply = _Reply(route.status, {"Location": route.location})
        else:
            reply = _Reply(route.status, {"Content-Type": route.content_type}, route.body)
            m = _RANGE.match(self.headers.get("Range") or "")
            if m and srv.ranges and route.status == 200:
                start = int(m.group(1))
                end = min(int(m.group(2) or len(route.body) - 1), len(route.body) - 1)
                reply = _Reply(
                    206,
                    {"Content-Type": route.content_type, "Content-Range": f"bytes {start}-{end}/{len(route.body)}"},
                    route.body[start : end + 1],
                )
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if route is not None and route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(reply.body), 65536):
                part = reply.body[i : i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
