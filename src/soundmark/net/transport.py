"""The one SSRF-safe HTTP layer: every outgoing request of the server (``url=`` downloads, live stream
sources, stream callbacks) goes through :class:`PinnedClient` (blocking, for stream threads) or
:class:`AsyncPinnedClient` (for the event loop).

For every hop of a request: the URL must be http(s), without credentials; its host is resolved once and
every address it resolves to must pass the :class:`~soundmark.net.addresses.AddressPolicy`; the
connection then goes to that very address (no DNS-rebinding window) while the ``Host`` header and the
TLS SNI / certificate check keep the real name. Redirects are not left to httpx: each hop is checked the
same way, up to a hop limit. Bodies are read raw (``Accept-Encoding: identity``; a compressed answer is
refused) under a byte cap that holds whatever ``Content-Length`` claims, with per-read timeouts and,
for downloads, a deadline for the whole. Error messages name the host, never the query string
(callback URLs carry their receiver's secrets).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from soundmark.errors import SoundmarkError, TooLongError
from soundmark.net.addresses import PUBLIC_ONLY, AddressPolicy, IPAddress

REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "soundmark"


class NetError(SoundmarkError):
    """A URL is refused, or talking to it failed (AudD 600)."""

    code = 600


@dataclass(frozen=True)
class Limits:
    """Seconds and hops allowed to one request. ``total`` bounds a whole download of
    :meth:`AsyncPinnedClient.download` (redirects and body included); None for no bound beyond ``read``
    per read (a live stream's reader stops on its own stop event)."""

    connect: float = 10.0
    read: float = 15.0
    total: float | None = None
    max_redirects: int = 5


# --- checks shared by both clients ------------------------------------------------------------
def parse_url(url: str | httpx.URL) -> httpx.URL:
    """``url`` parsed; NetError unless it is http(s) with a host and no credentials."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise NetError(f"invalid url: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise NetError(f"url scheme {parsed.scheme or '(none)'!r} is not allowed; use http or https")
    if parsed.userinfo:
        raise NetError("url must not contain credentials (user:password@)")
    if not parsed.raw_host:
        raise NetError("url has no host")
    return parsed


def _host_port(url: httpx.URL) -> tuple[str, int]:
    return url.raw_host.decode("ascii"), url.port or (443 if url.scheme == "https" else 80)


def _checked(host: str, infos: list[Any], policy: AddressPolicy) -> list[IPAddress]:
    ips: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not policy.allows(ip):
            raise NetError(f"url host {host!r} resolves to a non-public address ({ip}); refused")
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise NetError(f"cannot resolve host {host!r}")
    return ips


def resolve(url: httpx.URL, policy: AddressPolicy) -> list[IPAddress]:
    """Every address ``url``'s host resolves to (blocking); NetError if any one is not allowed."""
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise NetError(f"cannot resolve host {host!r}") from exc
    return _checked(host, infos, policy)


async def resolve_async(url: httpx.URL, policy: AddressPolicy) -> list[IPAddress]:
    """:func:`resolve` without blocking the event loop."""
    host, port = _host_port(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise NetError(f"cannot resolve host {host!r}") from exc
    return _checked(host, list(infos), policy)


def check_url(url: str, policy: AddressPolicy) -> httpx.URL:
    """``url`` parsed, its host resolved and every address checked — without connecting (blocking)."""
    parsed = parse_url(url)
    resolve(parsed, policy)
    return parsed


def _pinned(
    client: httpx.Client | httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    ip: IPAddress,
    headers: dict[str, str] | None,
    content: bytes | None,
) -> httpx.Request:
    """A request to ``ip`` that still names ``url``'s host (Host header, SNI, certificate check)."""
    base = {"Host": url.netloc.decode("ascii"), "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    ext = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    return client.build_request(
        method, url.copy_with(host=str(ip)), headers={**base, **(headers or {})}, content=content, extensions=ext
    )


def _next_hop(resp: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    """Where a GET answer redirects (to be checked again), or None for a usable 2xx answer."""
    if resp.status_code in REDIRECTS and "location" in resp.headers:
        try:
            return parse_url(url.join(resp.headers["location"]))
        except httpx.InvalidURL as exc:
            raise NetError("redirect to an invalid url") from exc
    if not resp.is_success:
        raise NetError(f"HTTP {resp.status_code} from {url.host}")
    if resp.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise NetError("compressed (Content-Encoding) responses are not accepted")
    return None


def _client_kwargs(limits: Limits) -> dict[str, Any]:
    return {
        "timeout": httpx.Timeout(limits.read, connect=limits.connect),
        "follow_redirects": False,  # each hop is checked here
        "trust_env": False,  # no proxies or netrc from the environment
        "limits": httpx.Limits(max_keepalive_connections=0),  # a connection never serves another host
    }


def _failure(exc: httpx.HTTPError) -> NetError:
    """A transport failure as a NetError naming the address it happened with (never the query)."""
    try:
        where = f" ({exc.request.url.host})"
    except RuntimeError:  # raised before any request was built
        where = ""
    if isinstance(exc, httpx.TimeoutException):
        return NetError(f"timed out{where}")
    return NetError(f"{type(exc).__name__}: {exc}{where}")


class BodyCap:
    """Counts a body's bytes against ``max_bytes``, whatever its ``Content-Length`` claims."""

    def __init__(self, resp: httpx.Response | None, max_bytes: int):
        """``resp``: the response whose claimed Content-Length is checked at once (None: no claim)."""
        self.max_bytes, self.seen = max_bytes, 0
        length = "" if resp is None else resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise TooLongError(f"the body is {int(length)} bytes; the limit is {max_bytes}")

    def add(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        if self.seen > self.max_bytes:
            raise TooLongError(f"the body exceeds the limit of {self.max_bytes} bytes")


def read_body(resp: httpx.Response, max_bytes: int, stop_at: int | None = None) -> bytes:
    """A streaming response's raw body under ``max_bytes`` (reading stops once ``stop_at`` bytes are in)."""
    cap, data = BodyCap(resp if stop_at is None else None, max_bytes), bytearray()
    try:
        for chunk in resp.iter_raw():
            cap.add(chunk)
            data += chunk
            if stop_at is not None and len(data) >= stop_at:
                break
    except httpx.HTTPError as exc:
        raise _failure(exc) from exc
    return bytes(data)


def range_header(byte_range: tuple[int, int] | None) -> dict[str, str]:
    """The Range header for ``(offset, length)``; none for None."""
    if byte_range is None:
        return {}
    offset, length = byte_range
    return {"Range": f"bytes={offset}-{offset + length - 1}"}


def _slice_of(resp: httpx.Response, byte_range: tuple[int, int] | None) -> tuple[int, int] | None:
    """The slice of the body to keep: None for all of it (no range asked, or a 206 answer); the asked
    ``(offset, length)`` when the server ignored ``Range`` and sent the whole resource (200)."""
    if byte_range is None:
        return None
    if resp.status_code == 206:
        want = f"bytes {byte_range[0]}-"
        if not resp.headers.get("content-range", want).startswith(want):
            raise NetError(f"the server answered another byte range than {byte_range[0]}-")
        return None
    return byte_range


# --- blocking client (stream threads) ---------------------------------------------------------
class PinnedClient:
    """Blocking SSRF-safe HTTP client; one per stream reader thread."""

    def __init__(
        self,
        policy: AddressPolicy = PUBLIC_ONLY,
        limits: Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        self.policy, self.limits = policy, limits or Limits()
        self._client = httpx.Client(transport=transport, **_client_kwargs(self.limits))

    def __enter__(self) -> PinnedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _send(self, url: httpx.URL, headers: dict[str, str] | None) -> httpx.Response:
        ips = resolve(url, self.policy)
        for n, ip in enumerate(ips):
            try:
                return self._client.send(_pinned(self._client, "GET", url, ip, headers, None), stream=True)
            except httpx.ConnectError as exc:
                if n == len(ips) - 1:
                    raise _failure(exc) from exc
            except httpx.HTTPError as exc:
                raise _failure(exc) from exc
        raise NetError("no address to connect to")

    @contextmanager
    def get(
        self, url: str | httpx.URL, headers: dict[str, str] | None = None
    ) -> Iterator[tuple[httpx.Response, httpx.URL]]:
        """A streaming GET, redirects followed and checked: (the 2xx response, its final URL)."""
        current = parse_url(url)
        for _ in range(self.limits.max_redirects + 1):
            resp = self._send(current, headers)
            try:
                target = _next_hop(resp, current)
                if target is None:
                    yield resp, current
                    return
            finally:
                resp.close()
            current = target
        raise NetError(f"too many redirects (more than {self.limits.max_redirects})")

    def get_bytes(
        self, url: str | httpx.URL, max_bytes: int, byte_range: tuple[int, int] | None = None
    ) -> tuple[bytes, httpx.URL]:
        """The whole body of ``url`` (or the ``(offset, length)`` slice of it) and its final URL."""
        with self.get(url, range_header(byte_range)) as (resp, final):
            keep = _slice_of(resp, byte_range)
            if keep is None:
                return read_body(resp, max_bytes), final
            end = keep[0] + keep[1]
            if end > max_bytes:
                raise TooLongError(f"the byte range ends past the limit of {max_bytes} bytes")
            # The whole resource where a range was asked: read up to the range's end only.
            data = read_body(resp, max_bytes, stop_at=end)
        if len(data) < end:
            raise NetError("the resource is shorter than the byte range asked")
        return data[keep[0] : end], final


# --- async client (the event loop: downloads and callbacks) ----------------------------------
class AsyncPinnedClient:
    """The same guard on httpx's async client."""

    def __init__(
        self,
        policy: AddressPolicy = PUBLIC_ONLY,
        limits: Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.policy, self.limits = policy, limits or Limits()
        self._client = httpx.AsyncClient(transport=transport, **_client_kwargs(self.limits))

    async def __aenter__(self) -> AsyncPinnedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(
        self, method: str, url: httpx.URL, headers: dict[str, str] | None, content: bytes | None
    ) -> httpx.Response:
        ips = await resolve_async(url, self.policy)
        for n, ip in enumerate(ips):
            try:
                return await self._client.send(_pinned(self._client, method, url, ip, headers, content), stream=True)
            except httpx.ConnectError as exc:
                if n == len(ips) - 1:
                    raise _failure(exc) from exc
            except httpx.HTTPError as exc:
                raise _failure(exc) from exc
        raise NetError("no address to connect to")

    @asynccontextmanager
    async def get(self, url: str | httpx.URL) -> AsyncIterator[tuple[httpx.Response, httpx.URL]]:
        """A streaming GET, redirects followed and checked: (the 2xx response, its final URL)."""
        current = parse_url(url)
        for _ in range(self.limits.max_redirects + 1):
            resp = await self._send("GET", current, None, None)
            try:
                target = _next_hop(resp, current)
                if target is None:
                    yield resp, current
                    return
            finally:
                await resp.aclose()
            current = target
        raise NetError(f"too many redirects (more than {self.limits.max_redirects})")

    async def download(self, url: str, max_bytes: int, sink: BinaryIO | None = None) -> bytes:
        """The body of ``url`` — or, with ``sink``, b"" once the body is written there (memory stays
        flat). TooLongError past ``max_bytes``; NetError for an empty body, a failure or the deadline."""
        try:
            async with asyncio.timeout(self.limits.total), self.get(url) as (resp, _):
                cap = BodyCap(resp, max_bytes)
                body = bytearray()
                async for chunk in resp.aiter_raw():
                    cap.add(chunk)
                    if sink is None:
                        body += chunk
                    else:
                        sink.write(chunk)  # local disk: a short blocking write per network chunk
        except TimeoutError as exc:
            raise NetError("timed out") from exc
        except httpx.HTTPError as exc:
            raise _failure(exc) from exc
        if not cap.seen:
            raise NetError("the body is empty")
        return bytes(body)

    async def post(self, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST ``content`` to ``url``: the (closed, unread) answer, whatever its status — a redirect
        is not followed, the caller sees its status."""
        target = parse_url(url)
        try:
            resp = await self._send("POST", target, headers, content)
            await resp.aclose()  # only the status matters: the receiver's body is not read
        except httpx.HTTPError as exc:
            raise _failure(exc) from exc
        return resp
