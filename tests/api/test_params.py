"""The parameter models of recognize / findLyrics / upload and the redaction of secrets (no server)."""

from __future__ import annotations

import pytest

from soundmark.api.logs import redact
from soundmark.api.routes.methods import FindLyricsParams, RecognizeParams, UploadParams
from soundmark.audd.errors import ApiError, masked_params
from soundmark.audd.typed import parse


@pytest.mark.parametrize("value", ["-5", "1_0", "1e3", "inf", "nan", "1.5", "0x10", "１", str(2**63), "9" * 40, "x"])
def test_upload_audio_id_refused(value: str) -> None:
    with pytest.raises(ApiError) as err:
        parse(UploadParams, {"audio_id": value})
    assert err.value.code == 50 and "audio_id" in err.value.message


@pytest.mark.parametrize(("value", "expected"), [("0", 0), (" 146 ", 146), ("+7", 7), (str(2**63 - 1), 2**63 - 1)])
def test_upload_audio_id_accepted(value: str, expected: int) -> None:
    assert parse(UploadParams, {"audio_id": value}).audio_id == expected


def test_upload_audio_id_required() -> None:
    for params in ({}, {"audio_id": ""}, {"audio_id": "  "}):
        with pytest.raises(ApiError) as err:
            parse(UploadParams, params)
        assert err.value.code == 50 and "audio_id" in err.value.message


def test_recognize_params() -> None:
    p = parse(RecognizeParams, {"return": "spotify,lyrics", "all": "true", "market": "", "x": "ignored"})
    assert p.return_ == "spotify,lyrics" and p.all is True and p.market == "us"
    assert parse(RecognizeParams, {}).all is False
    for bad in ({"all": "maybe"}, {"market": "m" * 100}, {"return": "r" * 20_000}):
        with pytest.raises(ApiError) as err:
            parse(RecognizeParams, bad)
        assert err.value.code == 50


def test_find_lyrics_needs_q() -> None:
    assert parse(FindLyricsParams, {"q": " neon "}).q == "neon"
    with pytest.raises(ApiError) as err:
        parse(FindLyricsParams, {"q": " "})
    assert err.value.code == 50 and "`q`" in err.value.message


def test_every_token_like_key_is_masked() -> None:
    secret = "s3cretTokenValue"
    keys = ["api_token", "API_TOKEN", "Api_Token", "token", "access_token", "refresh_token", "key", "api_key",
            "apikey", "secret", "client_secret", "password", "passwd", "authorization", "auth"]  # fmt: skip
    echoed = masked_params({k: secret for k in keys} | {"q": "keys of the piano", "author": "me"})
    assert all(echoed[k] == "s***e" for k in keys)
    assert echoed["q"] == "keys of the piano" and echoed["author"] == "me"


def test_access_log_redacts_the_decoded_query() -> None:
    line = redact("api%5Ftoken=SECRET1&API_TOKEN=SECRET2&%61pi_key=SECRET3&q=a%20b&return=spotify,lyrics")
    assert "SECRET" not in line
    assert line.startswith("api_token=***&API_TOKEN=***&api_key=***&")
    assert "q=a+b" in line and "return=spotify,lyrics" in line
    assert redact("") == "" and redact("token=SECRET&&=&%ff=x") == "token=***&=&%EF%BF%BD=x"
