"""The presenter's song objects, pinned byte for byte: key order, which keys are present, ``""``
versus ``null``, integer versus float. These strings are what soundmark sent before the response
models existed (one builder per transport); a change to them is a change of the wire format."""

from __future__ import annotations

import json

import pytest

from soundmark.audd import presenter
from soundmark.audd.errors import Operator, RequestEcho, error_body
from soundmark.audd.models import Song, wire
from soundmark.catalog.models import Track, TrackMeta
from soundmark.match.recognizer import Match
from soundmark.match.tracklist import TrackSegment
from soundmark.services.recognition_pool import WorkerMatch

BASE = "http://h"
EXTERNAL = {"spotify_id": "5B9qVIyjqeWkeOAp2tJgqL", "deezer_id": "3135556"}
DESCRIBED = Track(
    id=3,
    meta=TrackMeta(title="T", artist="A", album="Al", release_date="1985", label="L", isrc="GB1", lyrics="la",
                   external=EXTERNAL),
    duration=200.0,
)  # fmt: skip
CUSTOM = Track(id=4, meta=TrackMeta(audio_id=42), duration=10.0)
SEGMENT = TrackSegment(3, 14.5, 30.2, 0.0, 16.0, 1.03, 140.0, 3)

DEEZER = (
    '{"id": 3135556, "link": "https://www.deezer.com/track/3135556", "title": "T", "artist": {"name": "A"}, '
    '"album": {"title": "Al"}, "duration": 200, "type": "track"}'
)
SPOTIFY = (
    '{"id": "5B9qVIyjqeWkeOAp2tJgqL", "uri": "spotify:track:5B9qVIyjqeWkeOAp2tJgqL", '
    '"href": "https://api.spotify.com/v1/tracks/5B9qVIyjqeWkeOAp2tJgqL", '
    '"external_urls": {"spotify": "https://open.spotify.com/track/5B9qVIyjqeWkeOAp2tJgqL"}, "name": "T", '
    '"artists": [{"name": "A"}], "album": {"name": "Al", "release_date": "1985", "release_date_precision": "year"}, '
    '"external_ids": {"isrc": "GB1"}, "duration_ms": 200000, "type": "track"}'
)
LYRICS = (
    '{"song_id": 3, "artist_id": 0, "title": "T", "title_with_featured": "T", "full_title": "T by A", '
    '"artist": "A", "lyrics": "la", "media": "[]", "song_link": "http://h/song/3"}'
)
DESCRIBED_HEAD = '"artist": "A", "title": "T", "album": "Al", "release_date": "1985", "label": "L"'


def sent(model: object) -> str:
    return json.dumps(wire(model))


def test_recognize_song_with_blocks_in_the_asked_order_and_lyrics_last() -> None:
    match = WorkerMatch(3, 61.234, 12.5, 1.02, 0.98)
    song = presenter.recognition_result(match, DESCRIBED, BASE, ["deezer", "lyrics", "spotify"], "us")
    assert isinstance(song, Song)
    assert sent(song) == (
        "{" + DESCRIBED_HEAD + ', "timecode": "01:01", "song_link": "http://h/song/3", "isrc": "GB1", '
        '"score": 12.5, "offset": 61.23, "speed": 1.02, "pitch": 0.98, '
        f'"deezer": {DEEZER}, "spotify": {SPOTIFY}, "lyrics": {LYRICS}' + "}"
    )
    spotify_first = presenter.recognition_result(match, DESCRIBED, BASE, ["spotify", "deezer"], "us")
    assert list(wire(spotify_first))[-2:] == ["spotify", "deezer"]


def test_custom_catalog_song_is_timecode_audio_id_score() -> None:
    song = presenter.recognition_result(WorkerMatch(4, 5.0, 7.5, 1.0, 1.0), CUSTOM, BASE, ["spotify"], "us")
    assert sent(song) == '{"timecode": "00:05", "audio_id": 42, "score": 7.5}'


def test_stream_song_carries_the_integer_score() -> None:
    song = presenter.stream_song(WorkerMatch(3, 5.0, 7.5, 1.0, 1.0), DESCRIBED, BASE, [], "us", 88)
    assert sent(song) == (
        "{" + DESCRIBED_HEAD + ', "timecode": "00:05", "song_link": "http://h/song/3", "isrc": "GB1", '
        '"score": 88, "offset": 5.0}'
    )


def test_enterprise_song_with_offsets_and_a_custom_one() -> None:
    song = presenter.enterprise_song(SEGMENT, DESCRIBED, 12.0, 24.0, BASE, accurate_offsets=True, wanted=["deezer"],
                                     market="us")  # fmt: skip
    assert sent(song) == (
        "{" + DESCRIBED_HEAD + ', "isrc": "GB1", "song_link": "http://h/song/3", "score": 100, "timecode": "00:00", '
        f'"start_offset": 2500, "end_offset": 12000, "speed": 1.03, "deezer": {DEEZER}' + "}"
    )
    custom = presenter.enterprise_song(SEGMENT, CUSTOM, 12.0, 24.0, BASE, accurate_offsets=False, wanted=["deezer"],
                                       market="us")  # fmt: skip
    assert sent(custom) == '{"audio_id": 42, "score": 100, "timecode": "00:00", "speed": 1.03}'


@pytest.mark.parametrize(("base", "link"), [(None, ""), (BASE, ', "song_link": "http://h/song/3"')])
def test_tracklist_entry(base: str | None, link: str) -> None:
    assert sent(presenter.tracklist_entry(SEGMENT, DESCRIBED, base)) == (
        '{"start_time": "00:00:14", "end_time": "00:00:30", "track_id": 3, "start": 14.5, "end": 30.2, '
        '"ref_start": 0.0, "ref_end": 16.0, "speed": 1.03, "score": 140.0, "windows": 3, '
        + DESCRIBED_HEAD
        + ', "isrc": "GB1"'
        + link
        + "}"
    )


def test_tracklist_entry_of_a_removed_track_has_no_metadata() -> None:
    assert set(wire(presenter.tracklist_entry(SEGMENT, None, BASE))) == {
        "start_time", "end_time", "track_id", "start", "end", "ref_start", "ref_end", "speed", "score", "windows"
    }  # fmt: skip


def test_cli_match_record_sends_unknown_metadata_as_null() -> None:
    match = Match(Track(id=5, meta=TrackMeta(title="Only"), duration=1.0), 3.14159, 9.5, 20, 1.0, 1.0)
    assert sent(presenter.match_record(match)) == (
        '{"artist": null, "title": "Only", "album": null, "release_date": null, "label": null, "timecode": "00:03", '
        '"offset": 3.14, "score": 9.5, "track_id": 5, "speed": 1.0, "pitch": 1.0}'
    )


@pytest.mark.parametrize("rates,shown", [((1.0, 0.9998), None), ((1.004, 0.997), None),
                                          ((1.0, 1.0212), (1.0, 1.0212)), ((0.951, 1.0), (0.951, 1.0))])  # fmt: skip
def test_every_output_shows_the_same_speed_and_pitch(
    rates: tuple[float, float], shown: tuple[float, float] | None
) -> None:
    """Rates nearer 1 than presenter.RATE_SHOWN are the estimate's noise: the API leaves them out
    and ``recognize --json`` / ``listen --json`` print 1.0, so a local and a server answer agree."""
    track = Track(id=5, meta=TrackMeta(title="Only"), duration=100.0)
    record = presenter.match_record(Match(track, 3.0, 9.5, 20, *rates))
    song = wire(presenter.recognition_result(WorkerMatch(5, 3.0, 9.5, *rates), track, BASE, [], "us"))
    assert (record.speed, record.pitch) == (shown or (1.0, 1.0))
    assert (song.get("speed"), song.get("pitch")) == (shown or (None, None))


def test_lyrics_hit() -> None:
    assert sent(presenter.lyrics_hit(DESCRIBED, BASE)) == LYRICS


@pytest.mark.parametrize(
    ("enterprise", "expected"),
    [
        (False, '{"status": "error", "error": {"error_code": 700, "error_message": "Adding a stream stream failed: '
                'no file."}, "request_params": {"api_token": "a***g", "url": "u"}, "request_api_method": "addStream", '
                '"request_http_method": "POST", "see api documentation": "d", "contact us": "c"}'),
        (True, '{"status": "error", "error": {"error_code": 700, "error_message": "No file."}, '
               '"requested_params": {"api_token": "a***g", "url": "u", "method": "recognize"}, '
               '"see api documentation": "d", "contact us": "c"}'),
    ],
)  # fmt: skip
def test_error_envelope(enterprise: bool, expected: str) -> None:
    echo = RequestEcho("addStream", "POST", {"api_token": "abcdefg", "url": "u"})
    body = error_body(700, "no file.", echo, enterprise=enterprise, operator=Operator(contact="c", docs_url="d"))
    assert json.dumps(body) == expected
