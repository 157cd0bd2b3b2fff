"""Read a live stream (Icecast/Shoutcast, plain HTTP audio, HLS) as mono float32 blocks.

Everything here is blocking and runs in one thread per stream: ``read_stream(url, ...)`` yields
``(samples, received_at)`` pairs until the stream ends (returns) or fails (raises StreamError).
Connections follow the same SSRF rules as ``url`` downloads (audio/fetch.py): http(s) only, every
address of every hop checked, the connection pinned to the checked address.
"""

from __future__ import annotations

import io
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import av
import httpx
import numpy as np

from soundmark.audio.fetch import FetchError, check_url, is_public_ip
from soundmark.errors import SoundmarkError

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HLS_TYPES = ("mpegurl",)  # application/vnd.apple.mpegurl, audio/mpegurl, application/x-mpegurl
_FORMAT_BY_TYPE = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "application/ogg": "ogg",
    "audio/ogg": "ogg",
    "audio/x-flac": "flac",
    "audio/flac": "flac",
}
HLS_LIVE_SEGMENTS = 3  # a new HLS listener starts this many segments back from the live edge, as players do


class StreamError(SoundmarkError):
    """The stream cannot be reached or read."""

    code = 650


@dataclass(frozen=True)
class SourceOptions:
    sample_rate: int
    allow_private: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 15.0


Blocks = Iterator[tuple[np.ndarray, float]]


def read_stream(url: str, opts: SourceOptions, stop: threading.Event) -> Blocks:
    """Mono float32 blocks at ``opts.sample_rate`` with the wall time each was received."""
    client = httpx.Client(
        timeout=httpx.Timeout(opts.read_timeout, connect=opts.connect_timeout),
        follow_redirects=False, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0),
    )  # fmt: skip
    with client:
        for _ in range(3):  # .m3u / .pls wrappers that point at the real stream
            with open_url(client, url, opts) as (resp, final):
                kind = _kind(resp, final)
                if kind == "audio":
                    yield from _decode_http(resp, opts, stop)
                    return
                text = _read_text(resp)
            if kind == "hls" or "#EXT-X-TARGETDURATION" in text or "#EXT-X-STREAM-INF" in text:
                yield from _read_hls(client, final, text, opts, stop)
                return
            url = _first_stream_url(text, final)
        raise StreamError("too many nested playlists")


# --- guarded HTTP -----------------------------------------------------------------------------
def _resolve(url: httpx.URL, allow_private: bool) -> list[str]:
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise StreamError(f"cannot resolve host {host!r}") from exc
    ips: list[str] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if not allow_private and not is_public_ip(ip):
            raise StreamError(f"stream host {host!r} resolves to a non-public address ({ip}); refused")
        if str(ip) not in ips:
            ips.append(str(ip))
    return ips


def check_stream_url(url: str, allow_private: bool) -> None:
    """Refuse a stream/callback URL that is not http(s) or resolves to a non-public address."""
    try:
        parsed = httpx.URL(url)
        check_url(parsed)
    except (httpx.InvalidURL, TypeError, FetchError) as exc:
        raise StreamError(f"invalid url: {exc}") from exc
    _resolve(parsed, allow_private)


@contextmanager
def open_url(client: httpx.Client, url: str, opts: SourceOptions) -> Iterator[tuple[httpx.Response, httpx.URL]]:
    """A streaming GET of ``url`` (redirects followed, each hop checked): (response, final URL)."""
    try:
        current = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise StreamError(f"invalid url: {exc}") from exc
    for _ in range(6):
        try:
            check_url(current)
        except FetchError as exc:
            raise StreamError(str(exc)) from exc
        ips = _resolve(current, opts.allow_private)
        headers = {"Host": current.netloc.decode("ascii"), "User-Agent": "soundmark", "Accept-Encoding": "identity"}
        ext = {"sni_hostname": current.raw_host.decode("ascii")} if current.scheme == "https" else {}
        resp = None
        for n, ip in enumerate(ips):
            try:
                req = client.build_request("GET", current.copy_with(host=ip), headers=headers, extensions=ext)
                resp = client.send(req, stream=True)
                break
            except httpx.ConnectError as exc:
                if n == len(ips) - 1:
                    raise StreamError(f"can't connect: {exc}") from exc
            except httpx.HTTPError as exc:
                raise StreamError(f"can't connect: {type(exc).__name__}: {exc}") from exc
        if resp is None:
            raise StreamError("can't connect: no address")
        try:
            if resp.status_code in _REDIRECTS and "location" in resp.headers:
                current = current.join(resp.headers["location"])
                continue
            if not resp.is_success:
                raise StreamError(f"HTTP {resp.status_code}")
            yield resp, current
            return
        finally:
            resp.close()
    raise StreamError("too many redirects")


def _kind(resp: httpx.Response, url: httpx.URL) -> str:
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    path = url.path.lower()
    if any(t in ctype for t in _HLS_TYPES) or path.endswith(".m3u8"):
        return "hls"
    if path.endswith((".m3u", ".pls")) or ctype in ("audio/x-scpls", "text/plain", "text/html"):
        return "playlist"
    return "audio"


def _read_text(resp: httpx.Response, limit: int = 1 << 20) -> str:
    data = bytearray()
    for chunk in resp.iter_raw():
        data += chunk
        if len(data) > limit:
            raise StreamError("playlist too large")
    return data.decode("utf-8", errors="replace")


def _first_stream_url(text: str, base: httpx.URL) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line.lower().startswith("file") and "=" in line:  # .pls: File1=http://...
            line = line.split("=", 1)[1].strip()
        if line and not line.startswith(("#", "[")) and "=" not in line.split("/")[0]:
            return str(base.join(line))
    raise StreamError("the playlist names no stream")


# --- continuous HTTP audio (Icecast, Shoutcast, a plain file) --------------------------------
class _ResponseReader(io.RawIOBase):
    """A non-seekable file over a streaming response, for PyAV."""

    def __init__(self, resp: httpx.Response, stop: threading.Event):
        self._it = resp.iter_raw()
        self._buf = b""
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        if self._stop.is_set():
            return 0
        if not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
            except httpx.HTTPError as exc:
                raise OSError(f"stream read failed: {type(exc).__name__}") from exc
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _decode_http(resp: httpx.Response, opts: SourceOptions, stop: threading.Event) -> Blocks:
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = _FORMAT_BY_TYPE.get(ctype)
    reader = _ResponseReader(resp, stop)
    try:
        container = av.open(reader, mode="r", format=fmt, options={"probesize": "32768", "analyzeduration": "500000"})
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StreamError(f"not a readable audio stream: {type(exc).__name__}") from exc
    with container:
        yield from _decode_container(container, opts.sample_rate, stop, lambda: time.time())


def _decode_container(
    container: av.container.InputContainer, rate: int, stop: threading.Event, clock: Callable[[], float]
) -> Blocks:
    if not container.streams.audio:
        raise StreamError("the stream has no audio")
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    pending: list[np.ndarray] = []
    n_pending = 0
    block = rate // 4  # hand over every 250 ms of audio
    errors = 0
    try:
        for packet in container.demux(stream):
            if stop.is_set():
                return
            try:
                frames = packet.decode()
            except av.InvalidDataError:
                errors += 1
                if errors > 50:
                    raise
                continue
            for frame in frames:
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    n_pending += out.samples
            if n_pending >= block:
                yield np.concatenate(pending), clock()
                pending, n_pending = [], 0
    except (av.FFmpegError, OSError) as exc:
        raise StreamError(f"stream read failed: {type(exc).__name__}: {exc}") from exc
    if pending:
        yield np.concatenate(pending), clock()


# --- HLS --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Playlist:
    target: float
    sequence: int
    segments: list[tuple[int, str]]  # (media sequence number, absolute URI)
    init: str | None
    ended: bool


def _parse_media_playlist(text: str, base: httpx.URL) -> _Playlist:
    target, sequence, ended, init = 6.0, 0, False, None
    segments: list[tuple[int, str]] = []
    n = 0
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line.split(":", 1)[1] or 6)
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1] or 0)
        elif line.startswith("#EXT-X-ENDLIST"):
            ended = True
        elif line.startswith("#EXT-X-MAP:"):
            m = re.search(r'URI="([^"]+)"', line)
            init = str(base.join(m.group(1))) if m else None
        elif line and not line.startswith("#"):
            segments.append((sequence + n, str(base.join(line))))
            n += 1
    return _Playlist(target, sequence, segments, init, ended)


def _fetch(client: httpx.Client, url: str, opts: SourceOptions, limit: int = 64 << 20) -> tuple[bytes, httpx.URL]:
    with open_url(client, url, opts) as (resp, final):
        data = bytearray()
        try:
            for chunk in resp.iter_raw():
                data += chunk
                if len(data) > limit:
                    raise StreamError("HLS segment too large")
        except httpx.HTTPError as exc:
            raise StreamError(f"HLS download failed: {type(exc).__name__}") from exc
    return bytes(data), final


def _read_hls(client: httpx.Client, url: httpx.URL, text: str, opts: SourceOptions, stop: threading.Event) -> Blocks:
    if "#EXT-X-STREAM-INF" in text:  # a master playlist: take its first variant
        variant = _first_stream_url("\n".join(x for x in text.splitlines() if not x.startswith("#")), url)
        body, url = _fetch(client, variant, opts)
        text = body.decode("utf-8", errors="replace")
    playlist = _parse_media_playlist(text, url)
    next_seq = playlist.segments[-HLS_LIVE_SEGMENTS][0] if len(playlist.segments) >= HLS_LIVE_SEGMENTS else 0
    if playlist.ended:
        next_seq = playlist.sequence
    init = b""
    idle_since = time.monotonic()
    while not stop.is_set():
        if playlist.init and not init:
            init, _ = _fetch(client, playlist.init, opts)
        fresh = [(s, u) for s, u in playlist.segments if s >= next_seq]
        for seq, seg_url in fresh:
            data, _ = _fetch(client, seg_url, opts)
            received = time.time()
            samples = _decode_segment(init + data, opts.sample_rate, stop)
            next_seq = seq + 1
            idle_since = time.monotonic()
            if len(samples):
                yield samples, received
            if stop.is_set():
                return
        if playlist.ended:
            return
        if time.monotonic() - idle_since > max(opts.read_timeout, 3 * playlist.target):
            raise StreamError("the HLS playlist stopped advancing")
        stop.wait(max(0.2, playlist.target / 2 if not fresh else 0.2))
        body, url = _fetch(client, str(url), opts)
        playlist = _parse_media_playlist(body.decode("utf-8", errors="replace"), url)


def _decode_segment(data: bytes, rate: int, stop: threading.Event) -> np.ndarray:
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StreamError(f"unreadable HLS segment: {type(exc).__name__}") from exc
    with container:
        parts = [x for x, _ in _decode_container(container, rate, stop, time.time)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
