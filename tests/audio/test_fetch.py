"""Tests for soundmark.audio.fetch (downloads through net/'s transport) against real local HTTP servers.

Every fetch goes through a guard transport that fails the test if asked to connect anywhere but
loopback, so no test ever sends traffic off this machine: the private-address cases must be
refused by validation, before any connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from soundmark.audio.fetch import fetch_url
from soundmark.errors import TooLongError
from soundmark.net import AddressPolicy, NetError, parse_networks

SMALL = bytes(range(256)) * 4  # 1 KiB of binary data
LARGE = b"\x01\x02\x03\x04" * (3 * 1024 * 1024 // 4)  # 3 MiB
TIMEOUT = 0.5


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        path, stop = self.path, self.server.stop
        if path == "/small":
            self._send(200, SMALL, {"Content-Type": "audio/mpeg"})
        elif path == "/large":
            self._send(200, LARGE)
        elif path == "/host":  # echoes the Host header it was sent
            self._send(200, (self.headers["Host"] or "").encode())
        elif path in ("/large-chunked", "/large-unsized"):
            chunked = path == "/large-chunked"
            self.send_response(200)
            self.send_header("Transfer-Encoding" if chunked else "Connection", "chunked" if chunked else "close")
            self.end_headers()
            for i in range(0, len(LARGE), 65536):
                part = LARGE[i : i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True
        elif path == "/redirect":
            self._send(302, headers={"Location": "/small"})
        elif path.startswith("/chain/"):
            self._send(302, headers={"Location": f"/chain/{int(path.rsplit('/', 1)[1]) + 1}"})
        elif path == "/to-127.0.0.1":
            self._send(302, headers={"Location": f"http://127.0.0.1:{self.server.peer_port}/small"})
        elif path == "/empty":
            self._send(200)
        elif path == "/slow":  # headers only after far longer than the timeout
            stop.wait(10)
            self._send(200, SMALL)
        elif path == "/drip":  # a byte every 0.1 s: each read is in time, the whole never is
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                if stop.wait(0.1):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
            self.close_connection = True
        elif path == "/lie-short":  # claims 100 bytes, sends 5000
            self._send(200, b"y" * 5000, {"Content-Length": "100"})
            self.close_connection = True
        elif path == "/lie-long":  # claims 5000 bytes, sends 10 and closes
            self._send(200, b"z" * 10, {"Content-Length": "5000"})
            self.close_connection = True
        else:
            self._send(404, b"not found")


class Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close joins the handler threads

    def __init__(self, host: str) -> None:
        super().__init__((host, 0), Handler)
        self.requests: list[str] = []
        self.stop = threading.Event()
        self.peer_port = 0

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up (timeouts, caps) break the pipe; that is expected

    @property
    def port(self) -> int:
        return self.server_address[1]


@dataclass
class Servers:
    main: Server  # on 127.0.0.1
    alt: Server | None  # on 127.0.0.2, where the OS allows binding it
    threads: list[threading.Thread] = field(default_factory=list)


def _start(host: str) -> tuple[Server, threading.Thread]:
    srv = Server(host)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return srv, t


@pytest.fixture
def servers() -> Iterator[Servers]:
    main, t1 = _start("127.0.0.1")
    alt = t2 = None
    try:
        alt, t2 = _start("127.0.0.2")
        alt.peer_port = main.port
    except OSError:
        pass
    out = Servers(main, alt, [t for t in (t1, t2) if t is not None])
    yield out
    for srv in (main, alt):
        if srv is not None:
            srv.stop.set()
            srv.shutdown()
            srv.server_close()
    for t in out.threads:
        t.join()


class GuardTransport(httpx.AsyncBaseTransport):
    """Passes requests to a real transport only when they go to a loopback address."""

    def __init__(self, verify: ssl.SSLContext | bool = True) -> None:
        self.inner = httpx.AsyncHTTPTransport(verify=verify)
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.hosts.append(host)
        ip = ipaddress.ip_address(host)  # fetch_url must connect to an address, never a name
        if not (ip in ipaddress.ip_network("127.0.0.0/8") or ip == ipaddress.ip_address("::1")):
            pytest.fail(f"test tried to connect to non-loopback {ip}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def fetch(url: str, guard: GuardTransport | None = None, **kw: object) -> bytes:
    kw = {"max_bytes": 10 * 1024 * 1024, "timeout": TIMEOUT, **kw}
    return asyncio.run(fetch_url(url, transport=guard or GuardTransport(), **kw))  # type: ignore[arg-type]


# --- allowed downloads ------------------------------------------------------------------------


def test_download_with_allow_private(servers: Servers) -> None:
    base = f"http://127.0.0.1:{servers.main.port}"
    assert fetch(f"{base}/small", allow_private=True) == SMALL
    assert fetch(f"{base}/large", allow_private=True) == LARGE
    assert fetch(f"http://localhost:{servers.main.port}/redirect", allow_private=True) == SMALL
    assert servers.main.requests == ["/small", "/large", "/redirect", "/small"]


def test_connects_to_the_ip_and_sends_the_original_host(servers: Servers) -> None:
    guard = GuardTransport()
    body = fetch(f"http://localhost:{servers.main.port}/host", guard, allow_private=True)
    assert body == f"localhost:{servers.main.port}".encode()
    assert guard.hosts == ["127.0.0.1"]


def test_download_into_a_sink_keeps_nothing_in_memory(servers: Servers) -> None:
    import io

    sink = io.BytesIO()
    url = f"http://localhost:{servers.main.port}/redirect"
    assert fetch(url, allow_private=True, sink=sink) == b""
    assert sink.getvalue() == SMALL  # the redirect's own body is never written
    big = io.BytesIO()
    assert fetch(f"http://127.0.0.1:{servers.main.port}/large", allow_private=True, sink=big) == b""
    assert big.getvalue() == LARGE
    with pytest.raises(TooLongError):
        url = f"http://127.0.0.1:{servers.main.port}/large-unsized"
        fetch(url, allow_private=True, max_bytes=1024, sink=io.BytesIO())


@pytest.mark.parametrize("path", ["/large", "/large-chunked", "/large-unsized"])
def test_byte_cap(servers: Servers, path: str) -> None:
    with pytest.raises(TooLongError):
        fetch(f"http://127.0.0.1:{servers.main.port}{path}", allow_private=True, max_bytes=1024 * 1024)


def test_byte_cap_allows_exactly_max(servers: Servers) -> None:
    url = f"http://127.0.0.1:{servers.main.port}/small"
    assert fetch(url, allow_private=True, max_bytes=len(SMALL)) == SMALL
    with pytest.raises(TooLongError):
        fetch(url, allow_private=True, max_bytes=len(SMALL) - 1)


def test_lying_content_length(servers: Servers) -> None:
    base = f"http://127.0.0.1:{servers.main.port}"
    assert fetch(f"{base}/lie-short", allow_private=True, max_bytes=1000) == b"y" * 100
    with pytest.raises(NetError):
        fetch(f"{base}/lie-long", allow_private=True)


# --- refused before any connection ------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1:{port}/a",
    "http://localhost:{port}/",
    "http://[::1]:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f.0.0.1:{port}/",
    "http://0x7f.1:{port}/",
    "http://0:{port}/",
    "http://10.1.2.3/x",
    "http://192.168.0.1/",
    "http://172.16.5.4/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:10.0.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[2002:7f00:1::]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[fe80::1]/",
    "http://[fec0::1]/",
    "http://[::]:{port}/",
    "http://100.64.0.1/",
    "http://0.0.0.0:{port}/",
    "http://224.0.0.1/",
    "http://255.255.255.255/",
    "https://127.0.0.1:{port}/",
]


@pytest.mark.parametrize("template", PRIVATE_URLS)
def test_private_addresses_refused_before_connecting(servers: Servers, template: str) -> None:
    guard = GuardTransport()
    with pytest.raises(NetError, match="non-public"):
        fetch(template.format(port=servers.main.port), guard)
    assert guard.hosts == []
    assert servers.main.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://x/",
        "gopher://x/",
        "data:audio/wav;base64,UklGRg==",
        "javascript:alert(1)",
        "http://user:pw@127.0.0.1/",
        "http:///nohost",
        "//127.0.0.1/",
        "not a url",
    ],
)
def test_bad_urls_refused(servers: Servers, url: str) -> None:
    guard = GuardTransport()
    with pytest.raises(NetError):
        fetch(url, guard, allow_private=True)
    assert guard.hosts == []
    assert servers.main.requests == []


# --- redirects, errors, timeouts --------------------------------------------------------------


def test_redirect_to_refused_address(servers: Servers) -> None:
    if servers.alt is None:
        pytest.skip("cannot bind 127.0.0.2")
    only_alt = {"policy": AddressPolicy(networks=parse_networks(["127.0.0.2/32"]))}
    base = f"http://127.0.0.2:{servers.alt.port}"
    assert fetch(f"{base}/small", **only_alt) == SMALL
    assert fetch(f"{base}/redirect", **only_alt) == SMALL
    guard = GuardTransport()
    with pytest.raises(NetError, match="non-public"):
        fetch(f"{base}/to-127.0.0.1", guard, **only_alt)
    assert guard.hosts == ["127.0.0.2"]
    assert servers.main.requests == []
    assert servers.alt.requests == ["/small", "/redirect", "/small", "/to-127.0.0.1"]


def test_too_many_redirects(servers: Servers) -> None:
    base = f"http://127.0.0.1:{servers.main.port}"
    with pytest.raises(NetError, match="too many redirects"):
        fetch(f"{base}/chain/0", allow_private=True, max_redirects=9)
    assert servers.main.requests == [f"/chain/{i}" for i in range(10)]
    with pytest.raises(NetError, match="too many redirects"):
        fetch(f"{base}/redirect", allow_private=True, max_redirects=0)


@pytest.mark.parametrize(("path", "match"), [("/missing", "404"), ("/empty", "empty")])
def test_http_errors(servers: Servers, path: str, match: str) -> None:
    with pytest.raises(NetError, match=match):
        fetch(f"http://127.0.0.1:{servers.main.port}{path}", allow_private=True)


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_timeouts(servers: Servers, path: str) -> None:
    start = time.monotonic()
    with pytest.raises(NetError, match="timed out"):
        fetch(f"http://127.0.0.1:{servers.main.port}{path}", allow_private=True)
    assert time.monotonic() - start < 2 * TIMEOUT + 0.5


def test_connection_refused() -> None:
    srv = Server("127.0.0.1")
    port = srv.port
    srv.server_close()  # the port is now closed
    with pytest.raises(NetError, match="ConnectError"):
        fetch(f"http://127.0.0.1:{port}/small", allow_private=True)


def test_https_verifies_the_hostname_while_connecting_to_the_ip(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    srv, thread = _start("127.0.0.1")
    srv.socket = server_ctx.wrap_socket(srv.socket, server_side=True)
    try:
        guard = GuardTransport(verify=ssl.create_default_context(cafile=str(cert)))
        body = fetch(f"https://localhost:{srv.port}/host", guard, allow_private=True)
        assert body == f"localhost:{srv.port}".encode()
        assert guard.hosts == ["127.0.0.1"]  # connected to the address, verified the name
        guard = GuardTransport(verify=ssl.create_default_context(cafile=str(cert)))
        with pytest.raises(NetError, match="ConnectError"):  # the cert does not name 127.0.0.1
            fetch(f"https://127.0.0.1:{srv.port}/host", guard, allow_private=True)
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join()
