"""AudD's captured responses (../shared/audd-reference/fixtures) validate against soundmark's response
models and come back out of them unchanged; the provider blocks in them validate against the typed
block models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from soundmark.audd import models
from soundmark.audd.blocks import PROVIDER_MODELS
from soundmark.audd.models import wire
from soundmark.catalog.models import Track, TrackMeta
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.streams.callbacks import notification_payload, result_payload, song_dict
from soundmark.streams.tracker import Play

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "audd-reference" / "fixtures"

# Every fixture, and the model of its body. A new fixture without an entry fails the test below.
FIXTURE_MODELS: dict[str, type[BaseModel]] = {
    "recognize_basic.json": models.RecognizeSuccess,
    "recognize_with_metadata.json": models.RecognizeSuccess,
    "recognize_custom_match.json": models.RecognizeSuccess,
    "enterprise_with_isrc_upc.json": models.EnterpriseSuccess,
    "error_19_no_callback_url.json": models.ErrorEnvelope,
    "error_700_no_file.json": models.ErrorEnvelope,
    "error_900_invalid_token.json": models.ErrorEnvelope,
    "error_902_stream_limit.json": models.ErrorEnvelope,
    "error_904_enterprise_unauthorized.json": models.ErrorEnvelope,
    "getStreams_empty.json": models.GetStreamsSuccess,
    "longpoll_no_events.json": models.LongpollTimeout,
    "streams_callback_with_result.json": models.CallbackResultBody,
    "streams_callback_with_notification.json": models.CallbackNotificationBody,
}


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return json.loads(path.read_text())


def test_every_fixture_has_a_model() -> None:
    if not FIXTURES.exists():
        pytest.skip(f"{FIXTURES} not present")
    assert {p.name for p in FIXTURES.glob("*.json")} == set(FIXTURE_MODELS)


@pytest.mark.parametrize("name", sorted(FIXTURE_MODELS))
def test_fixture_validates_and_round_trips(name: str) -> None:
    body = fixture(name)
    parsed = FIXTURE_MODELS[name].model_validate(body)
    assert wire(parsed) == body


def test_fixture_songs_are_typed() -> None:
    """What the fixtures say is read as soundmark's typed fields, not as opaque JSON."""
    basic = models.RecognizeSuccess.model_validate(fixture("recognize_basic.json"))
    assert isinstance(basic.result, models.Song) and basic.result.song_link
    custom = models.RecognizeSuccess.model_validate(fixture("recognize_custom_match.json"))
    assert isinstance(custom.result, models.Song) and isinstance(custom.result.audio_id, int)
    assert custom.result.artist is None
    chunks = models.EnterpriseSuccess.model_validate(fixture("enterprise_with_isrc_upc.json"))
    assert isinstance(chunks.result, list)
    song = chunks.result[0].songs[0]
    assert (song.score, song.isrc, song.upc) == (81, "GBUM71403885", "00602547037169")
    callback = models.CallbackResultBody.model_validate(fixture("streams_callback_with_result.json"))
    assert callback.result.play_length == 111 and callback.result.results[0].score == 100
    error = models.ErrorEnvelope.model_validate(fixture("error_904_enterprise_unauthorized.json"))
    assert error.error.error_code == 904 and error.requested_params and error.execution_time


def test_fixture_provider_blocks_validate_against_the_block_models() -> None:
    result = fixture("recognize_with_metadata.json")["result"]
    seen = []
    for name, model in PROVIDER_MODELS.items():
        if name not in result:
            continue
        seen.append(name)
        entries = result[name] if name == "musicbrainz" else [result[name]]
        for entry in entries:
            assert model.model_validate(entry).model_dump(by_alias=True, exclude_unset=True) == entry
    assert seen == ["apple_music", "spotify", "musicbrainz"]


def test_models_refuse_what_audd_does_not_send() -> None:
    """Unknown fields and wrong types fail: the round trip above is not a pass-through."""
    body = fixture("recognize_basic.json")
    with pytest.raises(ValidationError):
        models.RecognizeSuccess.model_validate({**body, "result": {**body["result"], "bogus": 1}})
    with pytest.raises(ValidationError):
        models.RecognizeSuccess.model_validate({**body, "status": "ok"})
    with pytest.raises(ValidationError):
        models.EnterpriseSuccess.model_validate({"status": "success", "result": [{"offset": "00:00", "songs": [{}]}]})
    with pytest.raises(ValidationError):
        PROVIDER_MODELS["deezer"].model_validate({"id": "not a number"})


def test_stream_callback_bodies_validate_against_the_callback_models() -> None:
    """What streams/callbacks.py queues for a callback URL (and longpoll) is the modelled shape."""
    track = Track(id=3, meta=TrackMeta(title="T", artist="A", album="Al", isrc="GB1"), duration=200.0)
    match = WorkerMatch(3, 30.0, 12.0, 1.0, 1.0)
    play = Play(track_id=3, start=1_700_000_000.0, end=1_700_000_111.0, duration=200.0, best=match)
    song = song_dict(match, track, "http://h", [], "us", 6.0)
    for with_length in (True, False):
        body = result_payload(7, play, [song], "+03:00", with_length=with_length)
        parsed = models.CallbackResultBody.model_validate(body)
        assert wire(parsed) == body
        assert parsed.result.results[0].score == 75  # twice the threshold, on AudD's integer scale
        assert (parsed.result.play_length == 111) is with_length
    note = notification_payload(7, 650, "can't connect", False)
    assert wire(models.CallbackNotificationBody.model_validate(note)) == note
