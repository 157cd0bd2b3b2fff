"""Playlist parsing (net/playlists.py): the variant an HLS master playlist leads to, what each media
segment is (byte range, init section, discontinuity, encryption), and .pls/.m3u radio wrappers."""

from __future__ import annotations

import pytest

from soundmark.net.playlists import PlaylistError, Resource, choose_variant, first_stream_url, parse_media

BASE = "http://radio.example/live/master.m3u8?token=abc"


def master(*entries: str, media: str = "") -> str:
    return "#EXTM3U\n" + media + "".join(entries)


def variant(uri: str, bandwidth: int, codecs: str | None = None, extra: str = "") -> str:
    attrs = f"BANDWIDTH={bandwidth}" + (f',CODECS="{codecs}"' if codecs else "") + extra
    return f"#EXT-X-STREAM-INF:{attrs}\n{uri}\n"


def test_audio_only_variant_preferred_over_a_cheaper_video_one() -> None:
    text = master(
        variant("video_low.m3u8", 150_000, "avc1.42e00a,mp4a.40.2", ",RESOLUTION=416x234"),
        variant("audio_hi.m3u8", 256_000, "mp4a.40.2"),
        variant("audio_lo.m3u8", 64_000, "mp4a.40.5"),
        variant("video_hi.m3u8", 3_000_000, "avc1.640028,mp4a.40.2", ",RESOLUTION=1920x1080"),
    )
    assert choose_variant(text, BASE) == "http://radio.example/live/audio_lo.m3u8"


def test_audio_rendition_preferred_over_video_variants() -> None:
    media = (
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=NO,URI="audio/en.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fr",DEFAULT=YES,URI="audio/fr.m3u8"\n'
    )
    text = master(
        variant("v1.m3u8", 500_000, "avc1.4d401e,mp4a.40.2", ',RESOLUTION=640x360,AUDIO="aud"'),
        media=media,
    )
    assert choose_variant(text, BASE) == "http://radio.example/live/audio/fr.m3u8"


def test_only_video_variants_take_the_lowest_bandwidth() -> None:
    text = master(
        variant("hi.m3u8", 2_000_000, "avc1.640028,mp4a.40.2"),
        variant("lo.m3u8", 400_000, "avc1.42e00a,mp4a.40.2"),
        variant("silent.m3u8", 100_000, "avc1.42e00a"),  # no audio codec at all: a last resort only
    )
    assert choose_variant(text, BASE) == "http://radio.example/live/lo.m3u8"


def test_variants_without_codecs_prefer_the_ones_without_a_resolution() -> None:
    text = master(variant("pic.m3u8", 100_000, extra=",RESOLUTION=320x180"), variant("plain.m3u8", 900_000))
    assert choose_variant(text, BASE) == "http://radio.example/live/plain.m3u8"


def test_a_media_playlist_is_not_a_master() -> None:
    assert choose_variant("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n", BASE) is None


def test_media_segments_byte_ranges_init_discontinuity_and_keys() -> None:
    text = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"
#EXTINF:4,
#EXT-X-BYTERANGE:1000@720
all.mp4
#EXTINF:4,
#EXT-X-BYTERANGE:500
all.mp4
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="other-init.mp4"
#EXTINF:4,
b.mp4
#EXT-X-KEY:METHOD=AES-128,URI="key.bin"
#EXTINF:4,
c.mp4
#EXT-X-KEY:METHOD=NONE
#EXTINF:4,
d.mp4
#EXT-X-ENDLIST
"""
    playlist = parse_media(text, "http://radio.example/hls/live.m3u8")
    assert (playlist.target, playlist.sequence, playlist.ended) == (4.0, 41, True)
    segs = playlist.segments
    assert [s.sequence for s in segs] == [41, 42, 43, 44, 45]
    base = "http://radio.example/hls/"
    assert segs[0].media == Resource(base + "all.mp4", (720, 1000))
    assert segs[1].media == Resource(base + "all.mp4", (1720, 500))  # no offset: right after the previous
    assert segs[0].init == segs[1].init == Resource(base + "init.mp4", (0, 720))
    assert segs[2].media == Resource(base + "b.mp4") and segs[2].init == Resource(base + "other-init.mp4")
    assert [s.discontinuity for s in segs] == [False, False, True, False, False]
    assert [s.encryption for s in segs] == [None, None, None, "AES-128", None]


def test_a_master_where_a_media_playlist_is_expected() -> None:
    with pytest.raises(PlaylistError, match="master"):
        parse_media(master(variant("a.m3u8", 1)), BASE)


def test_pls_takes_its_first_entry() -> None:
    text = "[playlist]\nNumberOfEntries=2\nFile2=http://b.example/2.mp3\nTitle1=One\nFile1=/one.mp3\nVersion=2\n"
    assert first_stream_url(text, "http://radio.example/x/listen.pls") == "http://radio.example/one.mp3"


@pytest.mark.parametrize(
    "text",
    [
        "#EXTM3U\n#EXTINF:-1,Radio One\nstream.mp3\n#EXTINF:-1,Radio Two\nhttp://b.example/2.mp3\n",
        "\ufeff# a bare list\n\nstream.mp3\nhttp://b.example/2.mp3\n",
    ],
    ids=["extm3u", "bare"],
)
def test_m3u_takes_its_first_stream(text: str) -> None:
    assert first_stream_url(text, "http://radio.example/x/listen.m3u") == "http://radio.example/x/stream.mp3"


def test_a_playlist_that_names_nothing() -> None:
    with pytest.raises(PlaylistError, match="names no stream"):
        first_stream_url("#EXTM3U\n# nothing here\n", BASE)
    with pytest.raises(PlaylistError, match="names no stream"):
        first_stream_url("[playlist]\nNumberOfEntries=0\n", BASE)
