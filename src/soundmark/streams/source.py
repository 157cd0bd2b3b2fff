"""Read a live stream (Icecast/Shoutcast, plain HTTP audio, HLS) as mono float32 blocks.

Everything here is blocking and runs in one thread per stream: ``read_stream(url, ...)`` yields
``(samples, received_at)`` pairs until the stream ends (returns) or fails (raises StreamError).
Every request goes through net/'s SSRF-safe transport (the same rules as ``url`` downloads), and
playlists are parsed by net/playlists.py.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import httpx
import numpy as np

from soundmark.errors import SoundmarkError, TooLongError
from soundmark.net.addresses import AddressPolicy
from soundmark.net.playlists import (
    PlaylistError,
    Resource,
    choose_variant,
    first_stream_url,
    looks_like_hls,
    parse_media,
)
from soundmark.net.transport import Limits, NetError, PinnedClient, check_url, read_body

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
PLAYLIST_MAX_BYTES = 1 << 20
SEGMENT_MAX_BYTES = 64 << 20


class StreamError(SoundmarkError):
    """The stream cannot be reached or read."""

    code = 650


@dataclass(frozen=True)
class SourceOptions:
    sample_rate: int
    allow_private: bool = False  # every address allowed (Settings.allow_private_urls)
    connect_timeout: float = 10.0
    read_timeout: float = 15.0
    policy: AddressPolicy | None = None  # the addresses allowed; None: public ones (or all, allow_private)

    def address_policy(self) -> AddressPolicy:
        return self.policy or AddressPolicy(allow_all=self.allow_private)


Blocks = Iterator[tuple[np.ndarray, float]]


def read_stream(url: str, opts: SourceOptions, stop: threading.Event) -> Blocks:
    """Mono float32 blocks at ``opts.sample_rate`` with the wall time each was received."""
    limits = Limits(connect=opts.connect_timeout, read=opts.read_timeout)
    try:
        with PinnedClient(opts.address_policy(), limits) as client:
            yield from _read(client, url, opts, stop)
    except (NetError, PlaylistError, TooLongError) as exc:
        raise StreamError(str(exc)) from exc


def _read(client: PinnedClient, url: str, opts: SourceOptions, stop: threading.Event) -> Blocks:
    for _ in range(3):  # .m3u / .pls wrappers that point at the real stream
        with client.get(url) as (resp, final):
            if not _is_playlist(resp, final):
                yield from _decode_http(resp, opts, stop)
                return
            text = _text(read_body(resp, PLAYLIST_MAX_BYTES))
        if looks_like_hls(text):  # by content: radios serve plain .m3u as audio/x-mpegurl too
            yield from _read_hls(client, str(final), text, opts, stop)
            return
        url = first_stream_url(text, str(final))
    raise StreamError("too many nested playlists")


def check_stream_url(url: str, allow_private: bool = False, policy: AddressPolicy | None = None) -> None:
    """Refuse a stream/callback URL that is not http(s) or resolves to an address not allowed
    (``policy``; by default public ones, or every one with ``allow_private``)."""
    try:
        check_url(url, policy or AddressPolicy(allow_all=allow_private))
    except NetError as exc:
        raise StreamError(str(exc)) from exc


def _is_playlist(resp: httpx.Response, url: httpx.URL) -> bool:
    """Whether the answer is a playlist (HLS, .m3u, .pls) rather than the audio itself."""
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if any(t in ctype for t in _HLS_TYPES) or ctype in ("audio/x-scpls", "text/plain", "text/html"):
        return True
    return url.path.lower().endswith((".m3u8", ".m3u", ".pls"))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


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
def _read_hls(client: PinnedClient, url: str, text: str, opts: SourceOptions, stop: threading.Event) -> Blocks:
    """Segments of the playlist at ``url`` as they appear, each decoded on its own.

    Every segment gets a fresh container, decoder and resampler (its EXT-X-MAP init section put in
    front), so an EXT-X-DISCONTINUITY — new timestamps, codec parameters or init section — carries no
    state over; only the init section's bytes are kept, until a segment names another one.
    """
    variant = choose_variant(text, url)
    if variant is not None:
        body, final = client.get_bytes(variant, PLAYLIST_MAX_BYTES)
        url, text = str(final), _text(body)
    playlist = parse_media(text, url)
    segs = playlist.segments
    next_seq = segs[-HLS_LIVE_SEGMENTS].sequence if len(segs) >= HLS_LIVE_SEGMENTS else playlist.sequence
    if playlist.ended:
        next_seq = playlist.sequence
    init: tuple[Resource | None, bytes] = (None, b"")
    idle_since = time.monotonic()
    while not stop.is_set():
        fresh = [seg for seg in playlist.segments if seg.sequence >= next_seq]
        for seg in fresh:
            if seg.encryption is not None:
                raise StreamError(
                    f"the HLS stream is encrypted (EXT-X-KEY METHOD={seg.encryption}); encrypted segments are "
                    "not supported"
                )
            if seg.init is not None and init[0] != seg.init:
                init = (seg.init, _get(client, seg.init))
            data = _get(client, seg.media)
            received = time.time()
            samples = _decode_segment((init[1] if seg.init is not None else b"") + data, opts.sample_rate, stop)
            next_seq = seg.sequence + 1
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
        body, final = client.get_bytes(url, PLAYLIST_MAX_BYTES)
        url = str(final)
        playlist = parse_media(_text(body), url)


def _get(client: PinnedClient, resource: Resource) -> bytes:
    return client.get_bytes(resource.url, SEGMENT_MAX_BYTES, resource.byte_range)[0]


def _decode_segment(data: bytes, rate: int, stop: threading.Event) -> np.ndarray:
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StreamError(f"unreadable HLS segment: {type(exc).__name__}") from exc
    with container:
        parts = [x for x, _ in _decode_container(container, rate, stop, time.time)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
