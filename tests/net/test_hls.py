"""Live-stream sources through net/: HLS read end to end from a loopback server with segments
encoded by PyAV — the audio variant chosen, EXT-X-BYTERANGE segments, an EXT-X-DISCONTINUITY with
a codec and rate change, encrypted playlists refused — and the address policy on every request."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from media import dominant_hz, encode, tone
from net_files import FileServer, Route

from soundmark.net import AddressPolicy, parse_networks
from soundmark.streams.source import SourceOptions, StreamError, read_stream

RATE = 8000  # the rate the reader hands out
SEG = 2.0  # seconds per segment
HLS = "application/vnd.apple.mpegurl"
TS = "video/mp2t"
OPTS = SourceOptions(RATE, policy=AddressPolicy(networks=parse_networks(["127.0.0.1/32"])), read_timeout=5.0)


def media_playlist(*entries: str, sequence: int = 0) -> bytes:
    head = f"#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-TARGETDURATION:{int(SEG)}\n#EXT-X-MEDIA-SEQUENCE:{sequence}\n"
    return (head + "".join(entries) + "#EXT-X-ENDLIST\n").encode()


def ts_tone(freq: float) -> bytes:
    return encode(tone(freq, SEG, 22050), 22050)


def read(url: str, opts: SourceOptions = OPTS) -> list[np.ndarray]:
    return [samples for samples, _ in read_stream(url, opts, threading.Event())]


def assert_tones(blocks: list[np.ndarray], freqs: list[float]) -> None:
    assert len(blocks) == len(freqs)
    for block, freq in zip(blocks, freqs, strict=True):
        assert abs(len(block) / RATE - SEG) < 0.15, len(block) / RATE  # a whole segment each
        assert abs(dominant_hz(block, RATE) - freq) < 10, (dominant_hz(block, RATE), freq)


def test_the_audio_only_variant_is_read_not_the_cheaper_video_one(server: FileServer) -> None:
    server.routes["/master.m3u8"] = Route(
        b"#EXTM3U\n"
        b'#EXT-X-STREAM-INF:BANDWIDTH=100000,CODECS="avc1.42e00a,mp4a.40.2",RESOLUTION=320x180\nvideo.m3u8\n'
        b'#EXT-X-STREAM-INF:BANDWIDTH=200000,CODECS="mp4a.40.2"\naudio/index.m3u8\n',
        HLS,
    )
    server.routes["/video.m3u8"] = Route(media_playlist("#EXTINF:2,\nv0.ts\n"), HLS)
    server.routes["/v0.ts"] = Route(ts_tone(880), TS)
    server.routes["/audio/index.m3u8"] = Route(media_playlist("#EXTINF:2,\na0.ts\n", "#EXTINF:2,\na1.ts\n"), HLS)
    server.routes["/audio/a0.ts"] = Route(ts_tone(440), TS)
    server.routes["/audio/a1.ts"] = Route(ts_tone(550), TS)
    assert_tones(read(f"{server.url}/master.m3u8"), [440, 550])
    assert server.paths == ["/master.m3u8", "/audio/index.m3u8", "/audio/a0.ts", "/audio/a1.ts"]


@pytest.mark.parametrize("ranges", [True, False], ids=["206", "server-ignores-range"])
def test_byterange_segments(ranges: bool) -> None:
    parts = [ts_tone(f) for f in (440, 660, 880)]
    offsets = [0, len(parts[0]), len(parts[0]) + len(parts[1])]
    srv = FileServer("127.0.0.1", ranges=ranges)
    try:
        srv.routes["/all.ts"] = Route(b"".join(parts), TS)
        srv.routes["/live.m3u8"] = Route(
            media_playlist(
                f"#EXTINF:2,\n#EXT-X-BYTERANGE:{len(parts[0])}@0\nall.ts\n",
                f"#EXTINF:2,\n#EXT-X-BYTERANGE:{len(parts[1])}\nall.ts\n",  # right after the previous range
                f"#EXTINF:2,\n#EXT-X-BYTERANGE:{len(parts[2])}@{offsets[2]}\nall.ts\n",
                sequence=7,
            ),
            HLS,
        )
        assert_tones(read(f"{srv.url}/live.m3u8"), [440, 660, 880])
        asked = [s.range for s in srv.seen if s.path == "/all.ts"]
        assert asked == [f"bytes={o}-{o + len(p) - 1}" for o, p in zip(offsets, parts, strict=True)]
    finally:
        srv.close()


def test_discontinuity_with_another_codec_and_rate(server: FileServer) -> None:
    stereo_aac = encode(tone(440, SEG, 44100), 44100, channels=2)
    mono_mp3 = encode(tone(880, SEG, 22050), 22050, fmt="mp3", codec="libmp3lame")
    server.routes["/a.ts"] = Route(stereo_aac, TS)
    server.routes["/b.mp3"] = Route(mono_mp3, "audio/mpeg")
    server.routes["/c.ts"] = Route(ts_tone(660), TS)
    server.routes["/live.m3u8"] = Route(
        media_playlist(
            "#EXTINF:2,\na.ts\n",
            "#EXT-X-DISCONTINUITY\n#EXTINF:2,\nb.mp3\n",
            "#EXT-X-DISCONTINUITY\n#EXTINF:2,\nc.ts\n",
        ),
        HLS,
    )
    assert_tones(read(f"{server.url}/live.m3u8"), [440, 880, 660])


@pytest.mark.parametrize("method", ["AES-128", "SAMPLE-AES"])
def test_encrypted_playlist_refused_with_a_clear_error(server: FileServer, method: str) -> None:
    server.routes["/live.m3u8"] = Route(
        media_playlist(f'#EXT-X-KEY:METHOD={method},URI="key.bin",IV=0x1\n#EXTINF:2,\nseg.ts\n'), HLS
    )
    server.routes["/key.bin"] = Route(b"0123456789abcdef")
    server.routes["/seg.ts"] = Route(ts_tone(440), TS)
    with pytest.raises(StreamError, match=f"encrypted \\(EXT-X-KEY METHOD={method}\\)"):
        read(f"{server.url}/live.m3u8")
    assert server.paths == ["/live.m3u8"]  # neither the key nor a segment was fetched


def test_every_stream_request_obeys_the_address_policy(server: FileServer, other: FileServer) -> None:
    other.routes["/seg.ts"] = Route(ts_tone(440), TS)
    server.routes["/live.m3u8"] = Route(media_playlist(f"#EXTINF:2,\n{other.url}/seg.ts\n"), HLS)
    with pytest.raises(StreamError, match=r"non-public address \(127\.0\.0\.2\)"):
        read(f"{server.url}/live.m3u8")
    assert other.seen == []
    with pytest.raises(StreamError, match=r"non-public address \(127\.0\.0\.1\)"):
        read(f"{server.url}/live.m3u8", SourceOptions(RATE))  # the default: public addresses only
    assert server.paths == ["/live.m3u8"]


def test_radio_playlists_lead_to_the_stream(server: FileServer) -> None:
    server.routes["/listen.pls"] = Route(b"[playlist]\nFile1=/listen.m3u\nNumberOfEntries=1\n", "audio/x-scpls")
    server.routes["/listen.m3u"] = Route(b"#EXTM3U\n#EXTINF:-1,Radio\n/radio.mp3\n", "audio/x-mpegurl")
    server.routes["/radio.mp3"] = Route(encode(tone(440, 3.0, 22050), 22050, "mp3", "libmp3lame"), "audio/mpeg")
    blocks = read(f"{server.url}/listen.pls")
    samples = np.concatenate(blocks)
    assert abs(len(samples) / RATE - 3.0) < 0.15
    assert abs(dominant_hz(samples, RATE) - 440) < 10
    assert server.paths == ["/listen.pls", "/listen.m3u", "/radio.mp3"]
