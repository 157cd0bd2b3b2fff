"""What both recognize transports (the HTTP methods and the WebSocket) share at the API edge:
AudD's ``recognize`` parameters read into the service's options, and the service's matches
presented as AudD's ``result`` (through ``audd/presenter.py``)."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import Field
from starlette.requests import HTTPConnection

from soundmark.api.origin import base_url
from soundmark.api.state import AppState
from soundmark.audd.metadata import parse_return
from soundmark.audd.models import wire
from soundmark.audd.presenter import recognition_result
from soundmark.audd.typed import Flag, Params, Text
from soundmark.catalog.models import Track
from soundmark.services.recognition import RecognitionOptions, RecognitionService, Recognized
from soundmark.settings import Settings


class RecognizeParams(Params):
    """What ``recognize`` (HTTP and WebSocket) reads besides the audio."""

    api_token: Text = ""
    return_: Text = Field("", alias="return")
    market: str = Field("us", max_length=16)  # a country code (apple_music / spotify links)
    all: Flag = False  # AudD's legacy option: every match, as an array

    @property
    def options(self) -> RecognitionOptions:
        return RecognitionOptions(every_match=self.all)


def present(found: list[Recognized], p: RecognizeParams, conn: HTTPConnection, settings: Settings) -> object:
    """The ``result`` of a recognition: the best match, or with AudD's ``all=true`` every match,
    best first, as an array."""
    wanted = parse_return(p.return_)
    base = base_url(conn, settings.public_url)
    results = [wire(recognition_result(r.match, r.track, base, wanted, p.market or "us")) for r in found]
    if p.all:
        return results
    return results[0] if results else None


def recognition_service(state: AppState) -> RecognitionService:
    """The recognition use case over this app's worker pool, its tracks read on the read pool."""

    async def tracks(ids: Collection[int]) -> dict[int, Track]:
        found: dict[int, Track] = await state.db.aread(lambda catalog: catalog.get_tracks(ids))
        return found

    return RecognitionService(state.pool, tracks, state.settings)
