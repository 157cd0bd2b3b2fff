"""Download the audio behind an API ``url`` parameter without letting it reach inside the network.

The ``url`` parameter makes the server open a connection on a client's behalf (SSRF). So only
http(s) is allowed, every address the host resolves to must be public (loopback, private,
link-local, cloud metadata, ... are refused, including IPv4 hidden in IPv6 forms), the
connection goes to the very address that was checked (no DNS-rebinding window; TLS still
verifies the hostname via SNI), each redirect hop is checked again, and size and time are capped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import BinaryIO

import httpx

from soundmark.errors import SoundmarkError, TooLongError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix, embeds an IPv4 address
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local-use NAT64 (RFC 8215)


class FetchError(SoundmarkError):
    """The url is refused, or downloading it failed (AudD 600)."""

    code = 600


def is_public_ip(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address, looking inside IPv6 wrappings of IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public_ip(ip.ipv4_mapped)
        if ip in _NAT64:
            return is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return is_public_ip(ip.sixtofour)
        if int(ip) >> 32 == 0 or ip in _NAT64_LOCAL or ip.is_site_local:  # IPv4-compatible ::a.b.c.d
            return False
    elif ip in _SHARED:
        return False
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def check_url(url: httpx.URL) -> None:
    if url.scheme not in ("http", "https"):
        raise FetchError(f"url scheme {url.scheme or '(none)'!r} is not allowed; use http or https")
    if url.userinfo:
        raise FetchError("url must not contain credentials (user:password@)")
    if not url.raw_host:
        raise FetchError("url has no host")


async def resolve_checked(url: httpx.URL, allowed: Callable[[IPAddress], bool] | None) -> list[IPAddress]:
    """Every address the url's host resolves to; refuse the url if any one of them is not allowed."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}") from exc
    ips: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if allowed is not None and not allowed(ip):
            raise FetchError(f"url host {host!r} resolves to a non-public address ({ip}); refused")
        if ip not in ips:
            ips.append(ip)
    if not ips:
        raise FetchError(f"cannot resolve host {host!r}")
    return ips


async def _get_once(
    client: httpx.AsyncClient, url: httpx.URL, ips: list[IPAddress], max_bytes: int, sink: BinaryIO | None
) -> httpx.URL | bytes:
    """GET ``url`` from the first reachable of its checked ``ips``: the body, or where it redirects."""
    headers = {"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity", "User-Agent": "soundmark"}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    for n, ip in enumerate(ips):
        pinned = url.copy_with(host=str(ip))
        try:
            async with client.stream("GET", pinned, headers=headers, extensions=extensions) as resp:
                return await _read(resp, url, max_bytes, sink)
        except httpx.ConnectError:
            if n == len(ips) - 1:
                raise
    raise AssertionError("unreachable")


async def _read(resp: httpx.Response, url: httpx.URL, max_bytes: int, sink: BinaryIO | None) -> httpx.URL | bytes:
    """The body (or, with ``sink``, b"" once the body is written there), or where it redirects."""
    if resp.status_code in _REDIRECTS and "location" in resp.headers:
        try:
            return url.join(resp.headers["location"])
        except httpx.InvalidURL as exc:
            raise FetchError("redirect to an invalid url") from exc
    if not resp.is_success:
        raise FetchError(f"download failed: HTTP {resp.status_code}")
    if resp.headers.get("content-encoding", "identity").lower() != "identity":
        raise FetchError("download failed: compressed (Content-Encoding) responses are not accepted")
    length = resp.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise TooLongError(f"download is {int(length)} bytes; the limit is {max_bytes}")
    body = bytearray()
    seen = 0
    async for chunk in resp.aiter_raw():
        seen += len(chunk)
        if seen > max_bytes:
            raise TooLongError(f"download exceeds the limit of {max_bytes} bytes")
        if sink is None:
            body += chunk
        else:
            sink.write(chunk)  # local disk: a short blocking write per network chunk
    if not seen:
        raise FetchError("download is empty")
    return bytes(body)


async def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    allow_private: bool = False,
    ip_allowed: Callable[[IPAddress], bool] | None = None,
    max_redirects: int = 5,
    transport: httpx.AsyncBaseTransport | None = None,
    sink: BinaryIO | None = None,
) -> bytes:
    """Download ``url`` (http/https only) and return its body — or, with ``sink``, write the body
    there as it arrives (memory stays flat whatever ``max_bytes``) and return b"".

    Every hop's host must resolve only to addresses that ``ip_allowed`` accepts (default: public
    ones, see :func:`is_public_ip`); ``allow_private`` lifts that check. ``timeout`` bounds connecting
    and each read, and the whole download gets twice that. Raises :class:`FetchError` when refused or
    failed, :class:`~soundmark.errors.TooLongError` when the body exceeds ``max_bytes``.
    """
    allowed = None if allow_private else (ip_allowed or is_public_ip)
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchError(f"invalid url: {exc}") from exc
    client = httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        trust_env=False,  # no proxies or netrc from the environment
        limits=httpx.Limits(max_keepalive_connections=0),  # a connection never serves another host
    )
    try:
        async with asyncio.timeout(2 * timeout), client:
            for _ in range(max_redirects + 1):
                check_url(current)
                result = await _get_once(client, current, await resolve_checked(current, allowed), max_bytes, sink)
                if isinstance(result, bytes):
                    return result
                current = result
            raise FetchError(f"too many redirects (more than {max_redirects})")
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FetchError("download timed out") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"download failed: {type(exc).__name__}: {exc}") from exc
