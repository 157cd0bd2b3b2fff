"""The SSRF-safe transport against real loopback servers: refusals happen before any connection,
the allow-list admits exactly its networks, every redirect hop is checked, bodies are capped,
byte ranges are honoured, callbacks' POSTs do not follow redirects."""

from __future__ import annotations

import asyncio
import ipaddress

import httpx
import pytest
from net_files import FileServer, Route

from soundmark.errors import TooLongError
from soundmark.net import AddressPolicy, AsyncPinnedClient, Limits, NetError, PinnedClient, parse_networks

LIMITS = Limits(connect=2.0, read=2.0, total=5.0, max_redirects=3)
BODY = bytes(range(256)) * 64  # 16 KiB
ONLY_127_0_0_2 = AddressPolicy(networks=parse_networks(["127.0.0.2/32"]))
ONLY_127_0_0_1 = AddressPolicy(networks=parse_networks(["127.0.0.1/32"]))


class Recorder(httpx.BaseTransport):
    """The real transport, recording the host each request connects to."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.hosts: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(request.url.host)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def get(url: str, policy: AddressPolicy, **kw: object) -> bytes:
    with PinnedClient(policy, LIMITS) as client:
        return client.get_bytes(url, **{"max_bytes": 1 << 20, **kw})[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("policy", [AddressPolicy(), ONLY_127_0_0_2], ids=["public-only", "other-network-listed"])
def test_private_address_refused_before_connecting(server: FileServer, policy: AddressPolicy) -> None:
    server.routes["/a"] = Route(BODY)
    port = server.server_address[1]
    for url in (f"{server.url}/a", f"http://localhost:{port}/a", f"http://[::ffff:127.0.0.1]:{port}/a"):
        with pytest.raises(NetError, match="non-public address"):
            get(url, policy)
        with pytest.raises(NetError, match="non-public address"):
            asyncio.run(_download(url, policy))
    assert server.seen == []


async def _download(url: str, policy: AddressPolicy, max_bytes: int = 1 << 20) -> bytes:
    async with AsyncPinnedClient(policy, LIMITS) as client:
        return await client.download(url, max_bytes)


def test_allow_list_admits_exactly_the_listed_network(server: FileServer, other: FileServer) -> None:
    server.routes["/a"] = other.routes["/a"] = Route(BODY)
    assert get(f"{other.url}/a", ONLY_127_0_0_2) == BODY
    assert asyncio.run(_download(f"{other.url}/a", ONLY_127_0_0_2)) == BODY
    with pytest.raises(NetError, match=r"non-public address \(127\.0\.0\.1\)"):
        get(f"{server.url}/a", ONLY_127_0_0_2)
    assert server.seen == []  # 127.0.0.1, next to the listed 127.0.0.2, was never contacted
    assert other.paths == ["/a", "/a"]


def test_connects_to_the_checked_address_and_keeps_the_host_name(server: FileServer) -> None:
    server.routes["/a"] = Route(BODY)
    port = server.server_address[1]
    recorder = Recorder()
    with PinnedClient(ONLY_127_0_0_1, LIMITS, transport=recorder) as client:
        data, final = client.get_bytes(f"http://localhost:{port}/a", 1 << 20)
    assert data == BODY and final.host == "localhost"
    assert recorder.hosts == ["127.0.0.1"]
    assert server.seen[0].host == f"localhost:{port}"


def test_redirect_to_a_private_address_refused(server: FileServer, other: FileServer) -> None:
    server.routes["/secret"] = Route(b"internal")
    other.routes["/hop"] = Route(location="/ok", status=302)
    other.routes["/ok"] = Route(BODY)
    other.routes["/out"] = Route(location=f"{server.url}/secret", status=307)
    assert get(f"{other.url}/hop", ONLY_127_0_0_2) == BODY  # a redirect within the allowed network
    with pytest.raises(NetError, match="non-public address"):
        get(f"{other.url}/out", ONLY_127_0_0_2)
    with pytest.raises(NetError, match="non-public address"):
        asyncio.run(_download(f"{other.url}/out", ONLY_127_0_0_2))
    assert server.seen == []
    assert other.paths == ["/hop", "/ok", "/out", "/out"]


def test_redirect_to_another_scheme_refused(server: FileServer) -> None:
    server.routes["/file"] = Route(location="file:///etc/passwd", status=302)
    with pytest.raises(NetError, match="scheme 'file'"):
        get(f"{server.url}/file", ONLY_127_0_0_1)


def test_hop_limit(server: FileServer) -> None:
    for i in range(10):
        server.routes[f"/r{i}"] = Route(location=f"/r{i + 1}", status=301)
    with pytest.raises(NetError, match="too many redirects"):
        get(f"{server.url}/r0", ONLY_127_0_0_1)
    assert server.paths == ["/r0", "/r1", "/r2", "/r3"]  # the first request and max_redirects=3 hops


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_size_cap(server: FileServer, chunked: bool) -> None:
    server.routes["/big"] = Route(BODY * 16, chunked=chunked)  # 256 KiB
    assert get(f"{server.url}/big", ONLY_127_0_0_1, max_bytes=len(BODY) * 16) == BODY * 16
    with pytest.raises(TooLongError):
        get(f"{server.url}/big", ONLY_127_0_0_1, max_bytes=len(BODY) * 16 - 1)
    with pytest.raises(TooLongError):
        asyncio.run(_download(f"{server.url}/big", ONLY_127_0_0_1, max_bytes=100_000))


@pytest.mark.parametrize("ranges", [True, False], ids=["206", "server-ignores-range"])
def test_byte_ranges(ranges: bool) -> None:
    srv = FileServer("127.0.0.1", ranges=ranges)
    try:
        srv.routes["/all"] = Route(BODY)
        with PinnedClient(ONLY_127_0_0_1, LIMITS) as client:
            assert client.get_bytes(f"{srv.url}/all", 1 << 20, (1000, 300))[0] == BODY[1000:1300]
            assert client.get_bytes(f"{srv.url}/all", 1 << 20, (0, 1))[0] == BODY[:1]
            with pytest.raises(TooLongError):
                client.get_bytes(f"{srv.url}/all", 1000, (0, 2000))  # the range is longer than the cap
            if ranges:  # the cap counts bytes transferred: a short range far into a big file is fine
                assert client.get_bytes(f"{srv.url}/all", 1000, (900, 200))[0] == BODY[900:1100]
            else:  # ... but without Range support everything up to the range's end would come
                with pytest.raises(TooLongError):
                    client.get_bytes(f"{srv.url}/all", 1000, (900, 200))
            if not ranges:
                with pytest.raises(NetError, match="shorter than the byte range"):
                    client.get_bytes(f"{srv.url}/all", 1 << 20, (len(BODY) - 10, 20))
        assert [s.range for s in srv.seen[:2]] == ["bytes=1000-1299", "bytes=0-0"]
    finally:
        srv.close()


def test_http_errors_and_compressed_bodies(server: FileServer) -> None:
    server.routes["/gone"] = Route(b"x", status=410)
    with pytest.raises(NetError, match="HTTP 410"):
        get(f"{server.url}/gone", ONLY_127_0_0_1)
    with pytest.raises(NetError, match="HTTP 404"):
        asyncio.run(_download(f"{server.url}/missing", ONLY_127_0_0_1))


def test_post_keeps_the_query_and_does_not_follow_redirects(server: FileServer, other: FileServer) -> None:
    server.routes["/hook"] = Route(b"OK")
    server.routes["/moved"] = Route(location=f"{other.url}/hook", status=307)

    async def post(url: str) -> int:
        async with AsyncPinnedClient(ONLY_127_0_0_1, LIMITS) as client:
            return (await client.post(url, b'{"a":1}', {"Content-Type": "application/json"})).status_code

    assert asyncio.run(post(f"{server.url}/hook?secret=s3")) == 200
    assert asyncio.run(post(f"{server.url}/moved")) == 307
    assert [(s.method, s.path) for s in server.seen] == [("POST", "/hook?secret=s3"), ("POST", "/moved")]
    assert server.posted == [b'{"a":1}', b'{"a":1}']
    assert other.seen == []
    with pytest.raises(NetError, match="non-public address"):
        asyncio.run(post(f"{other.url}/hook"))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://x/", "http://user:pw@127.0.0.1/", "http:///nohost", "not a url"]
)
def test_bad_urls_refused(url: str) -> None:
    with pytest.raises(NetError):
        get(url, AddressPolicy(allow_all=True))


def test_ip_literal_forms_are_resolved_before_the_check() -> None:
    for url in ("http://2130706433/", "http://0x7f.1/", "http://[::1]/"):
        with pytest.raises(NetError, match="non-public address"):
            get(url, ONLY_127_0_0_2)
    assert ipaddress.ip_address("127.0.0.1") not in parse_networks(["127.0.0.2/32"])[0]


def test_messages_never_carry_the_query_string(server: FileServer) -> None:
    closed = FileServer("127.0.0.1")
    closed.close()  # its port is now closed
    secret = "s3cr3t-token"
    urls = [
        (f"{server.url}/a?secret={secret}", AddressPolicy()),  # refused address
        (f"{server.url}/missing?secret={secret}", ONLY_127_0_0_1),  # HTTP 404
        (f"{closed.url}/hook?secret={secret}", ONLY_127_0_0_1),  # connection refused
    ]
    for url, policy in urls:
        with pytest.raises(NetError) as info:
            get(url, policy)
        assert secret not in str(info.value) and "127.0.0.1" in str(info.value), str(info.value)


def test_stream_callbacks_post_through_the_allow_list(server: FileServer, other: FileServer) -> None:
    from soundmark.settings import Settings
    from soundmark.streams.callbacks import post_json

    server.routes["/hook"] = Route(b"OK")
    other.routes["/hook"] = Route(b"OK")
    settings = Settings(allowed_networks=("127.0.0.1/32",))

    async def post(url: str) -> str | None:
        async with AsyncPinnedClient(AddressPolicy.from_settings(settings), LIMITS) as client:
            return await post_json(client, url, {"status": "-", "time": 1})

    assert asyncio.run(post(f"{server.url}/hook?secret=s3")) is None
    error = asyncio.run(post(f"{other.url}/hook?secret=s3"))
    assert error is not None and "non-public address (127.0.0.2)" in error and "s3" not in error
    assert server.posted == [b'{"status":"-","time":1}'] and other.seen == []
