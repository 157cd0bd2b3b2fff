"""The AudD method endpoints: ``/``, ``/<method>/`` and ``method=``; recognize, upload, findLyrics.

Every answer is HTTP 200 with AudD's envelope; whatever goes wrong becomes an AudD error code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from soundmark.api.auth import authorize
from soundmark.api.params import ApiRequest, BodyTooLarge, decode_base64_audio, read_request
from soundmark.api.results import base_url, operator
from soundmark.api.state import AppState, app_state
from soundmark.audd.errors import ApiError, RequestEcho, error_body
from soundmark.audd.metadata import parse_return
from soundmark.audd.presenter import lyrics_hit, recognition_result
from soundmark.audd.typed import Flag, Id, Params, Text, parse
from soundmark.audio.fetch import fetch_url
from soundmark.catalog.lyrics import search_lyrics
from soundmark.errors import DurationLimitError, SoundmarkError, TooLongError
from soundmark.services.catalog import replace_upload_slot
from soundmark.services.recognition_pool import Overloaded, WorkerMatch

log = logging.getLogger("soundmark.api")
router = APIRouter()

Handler = Callable[[AppState, Request, ApiRequest], Awaitable[object]]
ENTERPRISE = "enterprise"

_FORM_SCHEMA = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "api_token": {"type": "string"},
                        "url": {"type": "string", "description": "audio to download"},
                        "file": {"type": "string", "format": "binary"},
                        "audio": {"type": "string", "description": "base64 audio"},
                        "return": {"type": "string", "example": "apple_music,spotify"},
                        "market": {"type": "string", "example": "us"},
                        "audio_id": {"type": "integer", "description": "upload: the custom-catalog id"},
                        "q": {"type": "string", "description": "findLyrics: the text to search"},
                    },
                }
            }
        }
    }
}


class RecognizeParams(Params):
    """What ``recognize`` (HTTP and WebSocket) reads besides the audio."""

    api_token: Text = ""
    return_: Text = Field("", alias="return")
    market: str = Field("us", max_length=16)  # a country code (apple_music / spotify links)
    all: Flag = False  # AudD's legacy option: every match, as an array


class FindLyricsParams(Params):
    api_token: Text = ""
    q: Text = Field(min_length=1)


class UploadParams(Params):
    api_token: Text = ""
    audio_id: Id


# A JSONP callback name: a JavaScript identifier path (``cb``, ``jQuery123_456``, ``a.b``).
_CALLBACK = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*")


def jsonp(request: Request, body: dict[str, object], params: dict[str, str] | None = None) -> Response:
    """The JSON answer, wrapped as ``<callback>(...);`` when ``jsonp`` names a callback — from
    the query string, a form field or a JSON body alike."""
    callback = (params if params is not None else dict(request.query_params)).get("jsonp", "").strip()
    if len(callback) <= 200 and _CALLBACK.fullmatch(callback):
        text = json.dumps(body, ensure_ascii=False)
        return Response(f"{callback}({text});", media_type="application/javascript")
    return JSONResponse(body)


def is_enterprise_host(request: Request) -> bool:
    """AudD serves long files at enterprise.audd.io: a request whose Host starts with
    ``enterprise.`` reaching ``/`` means the enterprise method."""
    return request.headers.get("host", "").lower().startswith("enterprise.")


async def answer(request: Request, method_hint: str | None) -> Response:
    state = app_state(request)
    start = time.perf_counter()
    api = ApiRequest({k: v for k, v in request.query_params.items()}, None, request.method)
    if method_hint is None and is_enterprise_host(request):
        method_hint = ENTERPRISE
    method = canonical_method(state, method_hint) if method_hint else "recognize"
    max_body = state.settings.max_upload_bytes
    if method == ENTERPRISE:
        max_body = state.settings.max_enterprise_bytes
    try:
        api = await read_request(request, max_body * 4 // 3 + 65536)
        method = canonical_method(state, method_hint or api.get("method") or "recognize")
        handler = state.handlers.get(method)
        if handler is None:
            raise ApiError(50, f"unknown API method `{method}`.")
        result = await handler(state, request, api)
        body: dict[str, object] = {"status": "success", "result": result}
        outcome = "success"
    except ApiError as exc:
        echo = RequestEcho(method, request.method, api.params)
        body = error_body(
            exc.code, exc.message, echo, enterprise=method == ENTERPRISE, operator=operator(request, state.settings)
        )
        outcome = str(exc.code)
    except BodyTooLarge:
        limit = max_body // (1024 * 1024)
        message = f"the request is too big: {limit} MB is the maximum."
        if method != ENTERPRISE:
            message += " Use the enterprise endpoint for long files."
        echo = RequestEcho(method, request.method, api.params)
        body = error_body(
            400, message, echo, enterprise=method == ENTERPRISE, operator=operator(request, state.settings)
        )
        outcome = "400"
    except ClientDisconnect:
        # The client left while sending its body: nobody is there to read an answer.
        return Response(status_code=400)
    # Label values are bounded: the registered methods, and "other" for any unknown name a
    # client made up (each one would otherwise be a new time series).
    label = method if method in state.handlers else "other"
    state.metrics.requests.labels(label, "success" if outcome == "success" else "error").inc()
    if outcome != "success":
        state.metrics.errors.labels(outcome if outcome.isdigit() else "other").inc()
    state.metrics.latency.labels(label).observe(time.perf_counter() - start)
    if method == ENTERPRISE:  # AudD's enterprise host times every answer, success or error
        body["execution_time"] = f"{(time.perf_counter() - start) * 1000:.6f}ms"
    if isinstance(body.get("result"), Response):  # an answer in another format (enterprise CSV)
        return body["result"]  # type: ignore[return-value]
    return jsonp(request, body, api.params)


def canonical_method(state: AppState, name: str) -> str:
    """The registered method whose name matches ``name`` case-insensitively, else ``name``."""
    low = name.strip().strip("/").lower()
    for m in state.handlers:
        if m.lower() == low:
            return m
    return name.strip().strip("/")


async def audio_bytes(state: AppState, api: ApiRequest) -> bytes:
    """The audio of a request from ``file``, ``audio`` (base64) or ``url``; AudD 700 if none."""
    s = state.settings
    if api.file:
        data = api.file
    elif api.get("audio"):
        data = decode_base64_audio(api.params["audio"])
    elif api.get("url"):
        data = await fetch_url(
            api.get("url"), max_bytes=s.max_download_bytes, timeout=s.download_timeout,
            allow_private=s.allow_private_urls,
        )  # fmt: skip
    else:
        raise ApiError(700)
    if len(data) > s.max_upload_bytes:
        raise TooLongError(f"{s.max_upload_bytes // (1024 * 1024)} MB")
    return data


def engine_error(exc: SoundmarkError, settings_limit_mb: int) -> ApiError:
    if isinstance(exc, DurationLimitError):
        return ApiError(400, f"{exc}.")
    if isinstance(exc, TooLongError):
        return ApiError(400, f"the audio file is too big. {settings_limit_mb} MB is the maximum.")
    if isinstance(exc, Overloaded):
        return ApiError(611)
    if exc.code == 500:
        return ApiError(500, f"the file you sent is not a valid or supported audio file ({exc}).")
    if exc.code == 600:
        return ApiError(600, f"the audio URL couldn't be downloaded: {exc}.")
    return ApiError(exc.code, None)


async def recognize(state: AppState, request: Request, api: ApiRequest) -> object:
    authorize(state, request, api.get("api_token"), scope="recognize", allow_demo=True)
    p = parse(RecognizeParams, api.params)
    limit_mb = state.settings.max_upload_bytes // (1024 * 1024)
    try:
        data = await audio_bytes(state, api)
        matches = await state.pool.recognize(data, state.settings.query_seconds)
    except SoundmarkError as exc:
        raise engine_error(exc, limit_mb) from exc
    state.metrics.matches.labels("match" if matches else "no_match").inc()
    return match_results(state, request, matches, p)


def match_results(state: AppState, conn: HTTPConnection, matches: list[WorkerMatch], p: RecognizeParams) -> object:
    """The ``result`` of a recognition: the best match, or with AudD's ``all=true`` every
    match, best first, as an array."""
    wanted = parse_return(p.return_)
    base = base_url(conn, state.settings.public_url)
    results = []
    for match in matches if p.all else matches[:1]:
        track = state.store.catalog.get_track(match.track_id)
        if track is not None:
            results.append(recognition_result(match, track, base, wanted, p.market or "us"))
    if p.all:
        return results
    return results[0] if results else None


async def recognize_with_offset(state: AppState, request: Request, api: ApiRequest) -> object:
    raise ApiError(50, "recognition by humming/singing (recognizeWithOffset) is not supported by this server.")


async def find_lyrics(state: AppState, request: Request, api: ApiRequest) -> object:
    authorize(state, request, api.get("api_token"), scope="recognize", allow_demo=True)
    p = parse(FindLyricsParams, api.params)
    base = base_url(request, state.settings.public_url)
    return [lyrics_hit(t, base) for t in search_lyrics(state.store.catalog, p.q, limit=10)]


async def upload(state: AppState, request: Request, api: ApiRequest) -> object:
    """AudD's custom catalog: fingerprint the audio and store it under ``audio_id``."""
    authorize(state, request, api.get("api_token"), scope="catalog:write", count=False)
    audio_id = parse(UploadParams, api.params).audio_id
    limit_mb = state.settings.max_upload_bytes // (1024 * 1024)
    try:
        data = await audio_bytes(state, api)
        extracted = await state.pool.extract(data, state.settings.max_track_hours * 3600)
    except SoundmarkError as exc:
        raise engine_error(exc, limit_mb) from exc
    async with state.write_lock:
        await asyncio.to_thread(replace_upload_slot, state.store, audio_id, extracted, api.get("url") or "upload")
    return None


HANDLERS: dict[str, Handler] = {
    "recognize": recognize,
    "recognizeWithOffset": recognize_with_offset,
    "findLyrics": find_lyrics,
    "upload": upload,
}


@router.api_route("/", methods=["GET", "POST"], summary="recognize (or the method named by `method`)",
                  openapi_extra=_FORM_SCHEMA)  # fmt: skip
async def root(request: Request) -> Response:
    return await answer(request, None)


@router.api_route("/{method}", methods=["GET", "POST"], summary="any AudD method by path", openapi_extra=_FORM_SCHEMA)
@router.api_route("/{method}/", methods=["GET", "POST"], include_in_schema=False)
async def by_path(request: Request, method: str) -> Response:
    return await answer(request, method)
