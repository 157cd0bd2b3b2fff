"""The playlists a stream URL may lead to, parsed into what the stream reader fetches.

HLS (master and media playlists) is parsed by the maintained ``m3u8`` library; this module only decides:
which variant of a master playlist carries the audio most cheaply (:func:`choose_variant`), and what each
media segment is — its URL and ``EXT-X-BYTERANGE`` slice, its ``EXT-X-MAP`` init section, whether an
``EXT-X-DISCONTINUITY`` precedes it and whether ``EXT-X-KEY`` encrypts it (:func:`parse_media`).
Classic radio playlists (.m3u, .pls) just name the real stream (:func:`first_stream_url`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import urljoin

import m3u8

from soundmark.errors import SoundmarkError

HLS_MARKERS = ("#EXT-X-TARGETDURATION", "#EXT-X-STREAM-INF", "#EXT-X-MEDIA-SEQUENCE")
# RFC 6381 codec names (the part before the first dot), as HLS's CODECS attribute lists them.
AUDIO_CODECS = frozenset({"mp4a", "ac-3", "ec-3", "opus", "flac", "mp3", "alac", "vorbis", "dtsc", "dtse", "ac-4"})
VIDEO_CODECS = frozenset(
    {"avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "vp08", "vp8", "vp09", "vp9", "av01", "mp4v", "theora"}
)


class PlaylistError(SoundmarkError):
    """A playlist names nothing readable."""

    code = 650


@dataclass(frozen=True)
class Resource:
    """What to GET: a URL, or the ``(offset, length)`` bytes of it (EXT-X-BYTERANGE)."""

    url: str
    byte_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Segment:
    sequence: int  # media sequence number
    media: Resource
    init: Resource | None  # the EXT-X-MAP in effect (fMP4 / CMAF): prefix of every segment it covers
    discontinuity: bool  # EXT-X-DISCONTINUITY before it: new timestamps, possibly new codec parameters
    encryption: str | None  # EXT-X-KEY METHOD in effect ("AES-128", "SAMPLE-AES", ...); None when clear


@dataclass(frozen=True)
class MediaPlaylist:
    target: float  # EXT-X-TARGETDURATION, seconds
    sequence: int  # EXT-X-MEDIA-SEQUENCE of the first segment
    segments: list[Segment]
    ended: bool  # EXT-X-ENDLIST: nothing will be added


def looks_like_hls(text: str) -> bool:
    return any(marker in text for marker in HLS_MARKERS)


def _codecs(codecs: str | None) -> set[str]:
    return {c.strip().split(".", 1)[0].lower() for c in (codecs or "").split(",") if c.strip()}


def _variant_rank(variant: m3u8.Playlist) -> int:
    """0: audio-only by its CODECS; 2: CODECS unknown, no sign of video; 3: video and audio (PyAV
    decodes the audio track); 4: CODECS lists no audio at all (a last resort)."""
    info = variant.stream_info
    codecs = _codecs(info.codecs)
    video = bool(codecs & VIDEO_CODECS) or info.resolution is not None or bool(info.video)
    if not codecs:
        return 3 if video else 2
    if not codecs & AUDIO_CODECS and not info.audio:
        return 4
    return 3 if video else 0


def choose_variant(text: str, url: str) -> str | None:
    """The media playlist to read from a master playlist ``text`` (fetched from ``url``); None when
    ``text`` is already a media playlist.

    Preference: the lowest-bandwidth variant whose CODECS name audio and no video; then an audio
    rendition (EXT-X-MEDIA TYPE=AUDIO with a URI — audio-only by definition, DEFAULT=YES first); then
    the lowest-bandwidth remaining variant, video or not, whose audio track PyAV decodes.
    """
    master = m3u8.loads(text, uri=url)
    if not master.is_variant:
        return None
    ranked: list[tuple[int, float, str]] = []
    for variant in master.playlists:
        bandwidth = variant.stream_info.average_bandwidth or variant.stream_info.bandwidth
        ranked.append((_variant_rank(variant), float(bandwidth or math.inf), variant.absolute_uri))
    for n, media in enumerate(master.media):
        if (media.type or "").upper() == "AUDIO" and media.uri:
            default = (media.default or "").upper() == "YES"
            ranked.append((1, float(0 if default else 1 + n), media.absolute_uri))
    if not ranked:
        raise PlaylistError("the HLS master playlist lists no variant")
    return min(ranked, key=lambda r: (r[0], r[1]))[2]


def _byte_range(spec: str | None, url: str, last_end: dict[str, int]) -> tuple[int, int] | None:
    """``"length[@offset]"`` as (offset, length); without an offset the range starts where the
    previous range of the same resource ended (RFC 8216 §4.3.2.2)."""
    if not spec:
        return None
    length_text, _, offset_text = spec.strip().strip('"').partition("@")
    length = int(length_text)
    offset = int(offset_text) if offset_text else last_end.get(url, 0)
    if length <= 0 or offset < 0:
        raise PlaylistError(f"invalid EXT-X-BYTERANGE {spec!r}")
    last_end[url] = offset + length
    return offset, length


def parse_media(text: str, url: str) -> MediaPlaylist:
    """The segments of HLS media playlist ``text`` fetched from ``url``, with absolute URLs."""
    playlist = m3u8.loads(text, uri=url)
    if playlist.is_variant:
        raise PlaylistError("an HLS master playlist where a media playlist was expected")
    last_end: dict[str, int] = {}
    segments = []
    first = playlist.media_sequence or 0
    for n, seg in enumerate(playlist.segments):
        media_url = seg.absolute_uri
        init = None
        if seg.init_section is not None:
            init_url = seg.init_section.absolute_uri
            init = Resource(init_url, _byte_range(seg.init_section.byterange, "", {}))  # MAP: offset defaults to 0
        method = (seg.key.method or "NONE").upper() if seg.key is not None else "NONE"
        segments.append(
            Segment(
                sequence=first + n,
                media=Resource(media_url, _byte_range(seg.byterange, media_url, last_end)),
                init=init,
                discontinuity=bool(seg.discontinuity),
                encryption=None if method == "NONE" else method,
            )
        )
    return MediaPlaylist(float(playlist.target_duration or 6.0), first, segments, bool(playlist.is_endlist))


# --- classic radio playlists ----------------------------------------------------------------------
_PLS_ENTRY = re.compile(r"^\s*file(\d+)\s*=\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)


def first_stream_url(text: str, base: str) -> str:
    """The first stream a .pls or .m3u playlist names, as an absolute URL."""
    if text.lstrip().lower().startswith("[playlist]") or _PLS_ENTRY.search(text):
        # Hand-written: PLS is an INI-like Winamp format the m3u8 library does not read.
        entries = sorted((int(n), target) for n, target in _PLS_ENTRY.findall(text))
        if entries:
            return urljoin(base, entries[0][1])
        raise PlaylistError("the playlist names no stream")
    parsed = m3u8.loads(text, uri=base)
    if parsed.segments:
        return str(parsed.segments[0].absolute_uri)
    # m3u8 only takes lines announced by #EXTINF; a bare .m3u is just URLs, one a line.
    for line in text.splitlines():
        line = line.strip().lstrip("\ufeff")
        if line and not line.startswith("#"):
            return urljoin(base, line)
    raise PlaylistError("the playlist names no stream")
