"""Provider blocks from catalog metadata, checked against the official SDK's models."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from audd.models import (
    AppleMusicMetadata,
    DeezerMetadata,
    MusicBrainzEntry,
    NapsterMetadata,
    RecognitionResult,
    SpotifyMetadata,
)
from pydantic import BaseModel

from soundmark.audd.metadata import _BUILDERS, parse_return, provider_blocks
from soundmark.catalog.models import EXTERNAL_PROVIDERS, Track, TrackMeta

FIXTURE = Path(__file__).parents[3] / "shared/audd-reference/fixtures/recognize_with_metadata.json"
ALL = ["apple_music", "spotify", "deezer", "napster", "musicbrainz"]
MODELS: dict[str, type[BaseModel]] = {
    "apple_music": AppleMusicMetadata,
    "spotify": SpotifyMetadata,
    "deezer": DeezerMetadata,
    "napster": NapsterMetadata,
}

SPOTIFY_ID = "5B9qVIyjqeWkeOAp2tJgqL"
MB_RECORDING = "14379ff4-5128-4e0f-8d08-1a4e50f53187"
MB_ARTIST = "7c7f9c94-dee8-4903-892b-6cf44652e2de"
MB_RELEASE = "8b9c8913-0ebc-42ed-85d5-c426e5abdd6f"


def make_track(external: dict[str, str] | None = None, duration: float = 261.0, **meta: object) -> Track:
    base: dict[str, object] = {
        "title": "Everybody Wants To Rule The World",
        "artist": "Tears For Fears",
        "album": "Songs From The Big Chair",
        "release_date": "1985-02-25",
        "label": "Mercury",
        "isrc": "GBUM71403885",
    }
    base.update(meta)
    return Track(id=7, meta=TrackMeta(**base, external=external or {}), duration=duration)  # type: ignore[arg-type]


def assert_sdk_exact(name: str, block: object) -> None:
    """The block parses with the SDK's model with nothing coerced or dropped."""
    if name == "musicbrainz":
        assert isinstance(block, list) and block
        for entry in block:
            assert MusicBrainzEntry.model_validate(entry).model_dump(exclude_unset=True) == entry
    else:
        assert isinstance(block, dict) and block
        assert MODELS[name].model_validate(block).model_dump(exclude_unset=True) == block


def assert_result_validates(blocks: dict[str, object]) -> RecognitionResult:
    result = {
        "artist": "Tears For Fears",
        "title": "Everybody Wants To Rule The World",
        "timecode": "00:56",
        "song_link": "http://localhost:8080/song/7",
        **blocks,
    }
    parsed = RecognitionResult.model_validate(result)
    for name, block in blocks.items():
        value = getattr(parsed, name)
        if name == "musicbrainz":
            assert [e.model_dump(exclude_unset=True) for e in value] == block
        else:
            assert value.model_dump(exclude_unset=True) == block
    return parsed


# --- parse_return -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ("", []),
        ("   ", []),
        (",,", []),
        (" spotify , Apple_Music,spotify", ["spotify", "apple_music"]),
        ("timecode,lyrics", ["timecode", "lyrics"]),
        ("DEEZER,,deezer ,napster", ["deezer", "napster"]),
    ],
)
def test_parse_return(value: str | None, expected: list[str]) -> None:
    assert parse_return(value) == expected


# --- flat keys ----------------------------------------------------------------------------------


def test_spotify_from_id() -> None:
    blocks = provider_blocks(make_track({"spotify_id": SPOTIFY_ID}), ["spotify"])
    sp = blocks["spotify"]
    assert sp == {
        "id": SPOTIFY_ID,
        "uri": f"spotify:track:{SPOTIFY_ID}",
        "href": f"https://api.spotify.com/v1/tracks/{SPOTIFY_ID}",
        "external_urls": {"spotify": f"https://open.spotify.com/track/{SPOTIFY_ID}"},
        "name": "Everybody Wants To Rule The World",
        "artists": [{"name": "Tears For Fears"}],
        "album": {
            "name": "Songs From The Big Chair",
            "release_date": "1985-02-25",
            "release_date_precision": "day",
        },
        "external_ids": {"isrc": "GBUM71403885"},
        "duration_ms": 261000,
        "type": "track",
    }
    assert_sdk_exact("spotify", sp)


@pytest.mark.parametrize(
    "external",
    [
        {"spotify_url": f"https://open.spotify.com/intl-de/track/{SPOTIFY_ID}?si=abc"},
        {"spotify_uri": f"spotify:track:{SPOTIFY_ID}"},
    ],
)
def test_spotify_id_from_url_or_uri(external: dict[str, str]) -> None:
    sp = provider_blocks(make_track(external), ["spotify"])["spotify"]
    assert isinstance(sp, dict)
    assert sp["id"] == SPOTIFY_ID
    assert sp["uri"] == f"spotify:track:{SPOTIFY_ID}"
    assert sp["external_urls"] == {
        "spotify": external.get("spotify_url", f"https://open.spotify.com/track/{SPOTIFY_ID}")
    }
    assert_sdk_exact("spotify", sp)


def test_spotify_opaque_url_keeps_link_only() -> None:
    sp = provider_blocks(make_track({"spotify_url": "https://spotify.link/AbCdE"}), ["spotify"])["spotify"]
    assert isinstance(sp, dict)
    assert "id" not in sp and "uri" not in sp and "href" not in sp
    assert sp["external_urls"] == {"spotify": "https://spotify.link/AbCdE"}
    assert_sdk_exact("spotify", sp)


def test_apple_music_from_url() -> None:
    url = "https://music.apple.com/us/album/everybody-wants/1440825207?i=1440826582"
    am = provider_blocks(make_track({"apple_music_url": url}), ["apple_music"])["apple_music"]
    assert am == {
        "url": url,
        "playParams": {"id": "1440826582", "kind": "song"},
        "name": "Everybody Wants To Rule The World",
        "artistName": "Tears For Fears",
        "albumName": "Songs From The Big Chair",
        "isrc": "GBUM71403885",
        "releaseDate": "1985-02-25",
        "durationInMillis": 261000,
    }
    assert_sdk_exact("apple_music", am)


def test_apple_music_id_from_song_url_and_url_from_id() -> None:
    am = provider_blocks(
        make_track({"apple_music_url": "https://music.apple.com/gb/song/everybody-wants/1440826582"}),
        ["apple_music"],
    )["apple_music"]
    assert isinstance(am, dict) and am["playParams"] == {"id": "1440826582", "kind": "song"}

    am = provider_blocks(make_track({"apple_music_id": "1440826582"}), ["apple_music"], market="JP")["apple_music"]
    assert isinstance(am, dict)
    assert am["url"] == "https://music.apple.com/jp/song/1440826582"
    assert_sdk_exact("apple_music", am)


def test_deezer_from_id_and_url() -> None:
    dz = provider_blocks(make_track({"deezer_id": "3135556"}), ["deezer"])["deezer"]
    assert dz == {
        "id": 3135556,
        "link": "https://www.deezer.com/track/3135556",
        "title": "Everybody Wants To Rule The World",
        "artist": {"name": "Tears For Fears"},
        "album": {"title": "Songs From The Big Chair"},
        "duration": 261,
        "type": "track",
    }
    assert_sdk_exact("deezer", dz)

    dz = provider_blocks(make_track({"deezer_url": "https://www.deezer.com/fr/track/3135556"}), ["deezer"])["deezer"]
    assert isinstance(dz, dict)
    assert dz["id"] == 3135556 and dz["link"] == "https://www.deezer.com/fr/track/3135556"
    assert_sdk_exact("deezer", dz)


def test_deezer_non_integer_id_alone_gives_no_block() -> None:
    assert provider_blocks(make_track({"deezer_id": "abc"}), ["deezer"]) == {}


def test_napster_from_id() -> None:
    nap = provider_blocks(make_track({"napster_id": "Tra.5156528"}), ["napster"])["napster"]
    assert nap == {
        "type": "track",
        "id": "Tra.5156528",
        "name": "Everybody Wants To Rule The World",
        "artistName": "Tears For Fears",
        "albumName": "Songs From The Big Chair",
        "isrc": "GBUM71403885",
        "playbackSeconds": 261,
    }
    assert_sdk_exact("napster", nap)


def test_musicbrainz_from_ids() -> None:
    ext = {
        "musicbrainz_recording_id": MB_RECORDING,
        "musicbrainz_artist_id": MB_ARTIST,
        "musicbrainz_release_id": MB_RELEASE,
    }
    mb = provider_blocks(make_track(ext), ["musicbrainz"])["musicbrainz"]
    assert mb == [
        {
            "id": MB_RECORDING,
            "title": "Everybody Wants To Rule The World",
            "length": 261000,
            "artist-credit": [{"name": "Tears For Fears", "artist": {"id": MB_ARTIST, "name": "Tears For Fears"}}],
            "releases": [{"id": MB_RELEASE, "title": "Songs From The Big Chair"}],
            "isrcs": ["GBUM71403885"],
        }
    ]
    assert_sdk_exact("musicbrainz", mb)


def test_musicbrainz_recording_only_minimal() -> None:
    track = make_track({"musicbrainz_recording_id": MB_RECORDING}, duration=0.0, isrc=None, artist=None)
    mb = provider_blocks(track, ["musicbrainz"])["musicbrainz"]
    assert mb == [{"id": MB_RECORDING, "title": "Everybody Wants To Rule The World", "isrcs": None}]
    assert_sdk_exact("musicbrainz", mb)


def test_sparse_metadata_leaves_no_nulls() -> None:
    track = Track(
        id=1,
        meta=TrackMeta(
            external={
                "spotify_id": SPOTIFY_ID,
                "apple_music_id": "1",
                "deezer_id": "2",
                "napster_id": "Tra.3",
            }
        ),
        duration=0.0,
    )
    blocks = provider_blocks(track, ALL)
    assert set(blocks) == {"spotify", "apple_music", "deezer", "napster"}
    for name, block in blocks.items():
        assert isinstance(block, dict)
        assert None not in block.values(), name
        assert_sdk_exact(name, block)
    assert blocks["napster"] == {"type": "track", "id": "Tra.3"}


def test_all_flat_providers_validate_as_recognition_result() -> None:
    ext = {
        "spotify_id": SPOTIFY_ID,
        "apple_music_id": "1440826582",
        "deezer_id": "3135556",
        "napster_id": "Tra.5156528",
        "musicbrainz_recording_id": MB_RECORDING,
        "musicbrainz_artist_id": MB_ARTIST,
    }
    blocks = provider_blocks(make_track(ext), ALL)
    assert list(blocks) == ALL
    parsed = assert_result_validates(blocks)
    assert parsed.spotify is not None and parsed.spotify.id == SPOTIFY_ID
    assert parsed.deezer is not None and parsed.deezer.id == 3135556
    assert parsed.musicbrainz is not None and parsed.musicbrainz[0].id == MB_RECORDING


def test_every_catalog_provider_has_a_builder() -> None:
    assert set(_BUILDERS) == set(EXTERNAL_PROVIDERS) == set(ALL)


# --- wanted, missing data ----------------------------------------------------------------------


def test_only_wanted_and_in_asked_order() -> None:
    ext = {"spotify_id": SPOTIFY_ID, "deezer_id": "3135556", "napster_id": "Tra.1"}
    blocks = provider_blocks(make_track(ext), ["deezer", "timecode", "lyrics", "media", "Spotify", "deezer"])
    assert list(blocks) == ["deezer", "spotify"]


def test_missing_data_means_key_absent() -> None:
    track = make_track({"spotify_id": SPOTIFY_ID, "unrelated": "x", "apple_music_url": "   "})
    blocks = provider_blocks(track, ALL)
    assert blocks.keys() == {"spotify"}
    assert provider_blocks(make_track(), ALL) == {}
    assert provider_blocks(make_track({"spotify_id": SPOTIFY_ID}), []) == {}


def test_metadata_alone_is_not_a_block() -> None:
    # Title/artist/isrc are known, but no provider id or link: nothing to say about any provider.
    assert provider_blocks(make_track({"musicbrainz_artist_id": MB_ARTIST}), ALL) == {}


# --- market ------------------------------------------------------------------------------------


def test_market_override() -> None:
    ext = {
        "apple_music_url": "https://music.apple.com/us/song/x/1440826582",
        "apple_music_url@gb": "https://music.apple.com/gb/song/x/1440826582",
        "spotify_url": f"https://open.spotify.com/track/{SPOTIFY_ID}",
        "spotify_url@DE": "https://open.spotify.com/intl-de/track/0000000000000000000000",
        "deezer_id@fr": "42",
    }
    track = make_track(ext)
    us = provider_blocks(track, ALL)
    assert us["apple_music"]["url"] == ext["apple_music_url"]  # type: ignore[index]
    assert us["spotify"]["id"] == SPOTIFY_ID  # type: ignore[index]
    assert "deezer" not in us  # only a French id: absent elsewhere

    gb = provider_blocks(track, ALL, market="GB")
    assert gb["apple_music"]["url"] == ext["apple_music_url@gb"]  # type: ignore[index]
    assert gb["spotify"]["id"] == SPOTIFY_ID  # type: ignore[index]

    de = provider_blocks(track, ALL, market="de")
    assert de["spotify"]["external_urls"] == {"spotify": ext["spotify_url@DE"]}  # type: ignore[index]
    assert de["spotify"]["id"] == "0" * 22  # type: ignore[index]

    fr = provider_blocks(track, ["deezer"], market="Fr")
    assert fr["deezer"]["id"] == 42  # type: ignore[index]
    for blocks in (us, gb, de, fr):
        assert_result_validates(blocks)


def test_default_market_is_us() -> None:
    ext = {
        "apple_music_url": "https://music.apple.com/xx/song/1",
        "apple_music_url@us": "https://us.example/1",
    }
    assert provider_blocks(make_track(ext), ["apple_music"])["apple_music"]["url"] == "https://us.example/1"  # type: ignore[index]
    am = provider_blocks(make_track({"apple_music_id": "1"}), ["apple_music"], market="")["apple_music"]
    assert am["url"] == "https://music.apple.com/us/song/1"  # type: ignore[index]


# --- whole objects -----------------------------------------------------------------------------


def test_whole_objects_returned_as_is_and_win_over_flat_keys() -> None:
    spotify = {"id": SPOTIFY_ID, "name": "Stored name", "popularity": 36, "custom": {"k": [1, 2]}}
    deezer = {"id": 3135556, "title": "Stored", "rank": 900000}
    napster = {"id": "Tra.1", "name": "Stored"}
    apple = {"url": "https://music.apple.com/us/song/1", "name": "Stored", "genreNames": ["Pop"]}
    mb = {"id": MB_RECORDING, "score": "100", "title": "Stored"}
    ext = {
        "spotify": json.dumps(spotify),
        "spotify_id": "ignoredignoredignored0",
        "deezer": json.dumps(deezer),
        "napster": json.dumps(napster),
        "apple_music": json.dumps(apple),
        "musicbrainz": json.dumps(mb),
        "musicbrainz_recording_id": "ignored",
    }
    blocks = provider_blocks(make_track(ext), ALL)
    assert blocks == {
        "apple_music": apple,
        "spotify": spotify,
        "deezer": deezer,
        "napster": napster,
        "musicbrainz": [mb],  # a single object becomes a list
    }
    for name, block in blocks.items():
        assert_sdk_exact(name, block)
    assert_result_validates(blocks)


def test_whole_object_market_variant_and_local_link() -> None:
    ext = {
        "apple_music": json.dumps({"url": "https://music.apple.com/us/song/1", "name": "US"}),
        "apple_music@jp": json.dumps({"url": "https://music.apple.com/jp/song/1", "name": "JP"}),
        "spotify": json.dumps({"id": SPOTIFY_ID, "external_urls": {"spotify": "https://a", "x": "y"}}),
        "spotify_url@gb": "https://b",
        "apple_music_url@gb": "https://music.apple.com/gb/song/1",
    }
    track = make_track(ext)
    assert provider_blocks(track, ["apple_music"], market="JP")["apple_music"] == {
        "url": "https://music.apple.com/jp/song/1",
        "name": "JP",
    }
    gb = provider_blocks(track, ["apple_music", "spotify"], market="gb")
    assert gb["apple_music"] == {"url": "https://music.apple.com/gb/song/1", "name": "US"}
    assert gb["spotify"] == {"id": SPOTIFY_ID, "external_urls": {"spotify": "https://b", "x": "y"}}
    us = provider_blocks(track, ["spotify"])
    assert us["spotify"] == json.loads(ext["spotify"])


@pytest.mark.parametrize("bad", ["{not json", "null", "42", '"str"', "[]", "{}", '[{"id": 1}]'])
def test_bad_whole_objects_are_ignored(bad: str, caplog: pytest.LogCaptureFixture) -> None:
    ext = {name: bad for name in ("spotify", "apple_music", "deezer", "napster")}
    with caplog.at_level(logging.DEBUG, logger="soundmark.audd.metadata"):
        assert provider_blocks(make_track(ext), ALL) == {}
        # ... and the flat keys still work when the whole object is unusable
        blocks = provider_blocks(make_track({**ext, "deezer_id": "5"}), ["deezer"])
    assert blocks["deezer"]["id"] == 5  # type: ignore[index]
    assert any(r.name == "soundmark.audd.metadata" and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("{broken", None),
        ("[]", None),
        ('"x"', None),
        ("[1, null, {}]", None),
        ('[{"id": "a"}, 3, {"id": "b"}]', [{"id": "a"}, {"id": "b"}]),
    ],
)
def test_bad_musicbrainz_whole_objects(stored: str, expected: list[dict[str, str]] | None) -> None:
    blocks = provider_blocks(make_track({"musicbrainz": stored}), ["musicbrainz"])
    assert blocks.get("musicbrainz") == expected


# --- the AudD fixture ----------------------------------------------------------------------------


def test_fixture_blocks_round_trip_as_whole_json() -> None:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} not present")
    result = json.loads(FIXTURE.read_text())["result"]
    names = [n for n in ALL if n in result]
    assert names == ["apple_music", "spotify", "musicbrainz"]
    ext = {name: json.dumps(result[name]) for name in names}
    for market in ("us", "gb"):
        blocks = provider_blocks(
            make_track(ext), parse_return("apple_music,spotify,deezer,napster,musicbrainz"), market
        )
        assert blocks == {name: result[name] for name in names}
        for name in names:
            assert_sdk_exact(name, blocks[name])
        merged = {**{k: v for k, v in result.items() if k not in ALL}, **blocks}
        assert RecognitionResult.model_validate(merged).model_dump(
            exclude_unset=True
        ) == RecognitionResult.model_validate(result).model_dump(exclude_unset=True)
