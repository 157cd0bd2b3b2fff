"""The HTML song page behind song_link."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from soundmark.api.song_page import format_duration, render_not_found, render_song_page
from soundmark.catalog.models import Track, TrackMeta

SPOTIFY_ID = "5B9qVIyjqeWkeOAp2tJgqL"
MB_RECORDING = "14379ff4-5128-4e0f-8d08-1a4e50f53187"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for key, value in attrs:
            if key == "href" and value is not None:
                self.hrefs.append(value)
            if key == "src" and value is not None:
                self.srcs.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Collector:
    c = _Collector()
    c.feed(html)
    c.close()
    return c


def full_track() -> Track:
    meta = TrackMeta(
        title="Everybody Wants To Rule The World",
        artist="Tears For Fears",
        album="Songs From The Big Chair",
        release_date="1985-02-25",
        label="Mercury",
        isrc="GBUM71403885",
        upc="602547000000",
        external={
            "spotify_id": SPOTIFY_ID,
            "apple_music_url": "https://music.apple.com/us/album/x/1440825207?i=1440826582",
            "deezer_id": "3135556",
            "musicbrainz_recording_id": MB_RECORDING,
            "napster_id": "Tra.1",
        },
    )
    return Track(id=42, meta=meta, duration=251.4)


def test_song_page_content() -> None:
    html = render_song_page(full_track(), "https://sm.example/")
    assert html.startswith("<!DOCTYPE html>")
    doc = parse(html)
    text = " ".join(doc.text)
    for value in (
        "Everybody Wants To Rule The World",
        "Tears For Fears",
        "Songs From The Big Chair",
        "1985-02-25",
        "Mercury",
        "GBUM71403885",
        "602547000000",
        "4:11",
    ):
        assert value in text
    assert "<title>Everybody Wants To Rule The World — Tears For Fears</title>" in html
    assert "https://sm.example/song/42" in doc.hrefs  # canonical, no double slash
    assert f"https://open.spotify.com/track/{SPOTIFY_ID}" in doc.hrefs
    assert "https://music.apple.com/us/album/x/1440825207?i=1440826582" in doc.hrefs
    assert "https://www.deezer.com/track/3135556" in doc.hrefs
    assert f"https://musicbrainz.org/recording/{MB_RECORDING}" in doc.hrefs
    for label in ("Spotify", "Apple Music", "Deezer", "MusicBrainz"):
        assert label in text
    assert "Napster" not in text


def test_song_page_is_self_contained() -> None:
    html = render_song_page(full_track(), "https://sm.example")
    doc = parse(html)
    assert "script" not in doc.tags
    assert "img" not in doc.tags and not doc.srcs
    assert "<style>" in html
    assert [t for t in doc.tags if t == "link"] == ["link"]  # only the canonical link, no stylesheets
    assert "@import" not in html and "url(" not in html


def test_song_page_escapes_everything() -> None:
    evil = '<script>alert("x")</script>'
    meta = TrackMeta(
        title=evil,
        artist="A & B <b>",
        album='"quoted"',
        label="<i>label</i>",
        isrc="<x>",
        release_date="<d>",
        external={
            "apple_music_url": 'https://music.apple.com/us/song/1"><script>alert(1)</script>',
            "deezer_url": "javascript:alert(1)",
            "spotify": json.dumps({"external_urls": {"spotify": "data:text/html,<script>alert(1)</script>"}}),
            "musicbrainz_recording_id": "<script>",
        },
    )
    html = render_song_page(Track(id=1, meta=meta, duration=10.0), 'https://h"><script>/')
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "A &amp; B &lt;b&gt;" in html
    doc = parse(html)
    assert "script" not in doc.tags and "b" not in doc.tags and "i" not in doc.tags
    assert evil in " ".join(doc.text)
    # unsafe link schemes are dropped, http(s) ones kept (escaped)
    assert not any(h.startswith(("javascript:", "data:")) for h in doc.hrefs)
    assert 'https://music.apple.com/us/song/1"><script>alert(1)</script>' in doc.hrefs


def test_song_page_minimal_track() -> None:
    html = render_song_page(Track(id=3, meta=TrackMeta(audio_id=146), duration=0.0), "")
    doc = parse(html)
    assert "Untitled" in " ".join(doc.text)
    assert doc.hrefs == ["/song/3"]
    assert "<dl>" not in html and 'class="links"' not in html


def test_not_found_page() -> None:
    html = render_not_found("<script>alert(1)</script>")
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "not found" in html.lower()
    assert "script" not in parse(html).tags


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (9.4, "0:09"), (59.6, "1:00"), (251.4, "4:11"), (3600, "1:00:00"), (3725, "1:02:05")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
