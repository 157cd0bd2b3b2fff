"""The AudD method endpoints: ``/``, ``/<method>/`` and ``method=``; recognize, upload, findLyrics.

Every answer is HTTP 200 with AudD's envelope; whatever goes wrong becomes an AudD error code.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from soundmark.api.auth import authorize
from soundmark.api.errors import api_error
from soundmark.api.origin import base_url, operator
from soundmark.api.params import ApiRequest, BodyTooLarge, decode_base64_audio, read_request
from soundmark.api.recognition import RecognizeParams, present, recognition_service
from soundmark.api.state import AppState, app_state
from soundmark.audd import models
from soundmark.audd.errors import ApiError, RequestEcho, error_body
from soundmark.audd.models import wire
from soundmark.audd.presenter import lyrics_hit
from soundmark.audd.schema import form_body
from soundmark.audd.typed import Id, Params, Text, parse
from soundmark.catalog.lyrics import search_lyrics
from soundmark.errors import SoundmarkError
from soundmark.services.catalog import replace_upload_slot

__all__ = ["HANDLERS", "RecognizeParams", "router"]

log = logging.getLogger("soundmark.api")
router = APIRouter()

Handler = Callable[[AppState, Request, ApiRequest], Awaitable[object]]
ENTERPRISE = "enterprise"


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
        try:
            result = await handler(state, request, api)
        except SoundmarkError as exc:  # a use case refused it: AudD's code and sentence
            raise api_error(exc) from exc
        body: dict[str, object] = {"status": "success", "result": wire(result)}
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
    if api.file:
        return api.file
    if api.get("audio"):
        return decode_base64_audio(api.params["audio"])
    if api.get("url"):
        return await recognition_service(state).download(api.get("url"))
    raise ApiError(700)


async def recognize(state: AppState, request: Request, api: ApiRequest) -> object:
    await authorize(state, request, api.get("api_token"), scope="recognize", allow_demo=True)
    p = parse(RecognizeParams, api.params)
    found = await recognition_service(state).recognize(await audio_bytes(state, api), p.options)
    state.metrics.matches.labels("match" if found else "no_match").inc()
    return present(found, p, request, state.settings)


async def recognize_with_offset(state: AppState, request: Request, api: ApiRequest) -> object:
    raise ApiError(50, "recognition by humming/singing (recognizeWithOffset) is not supported by this server.")


async def find_lyrics(state: AppState, request: Request, api: ApiRequest) -> object:
    await authorize(state, request, api.get("api_token"), scope="recognize", allow_demo=True)
    p = parse(FindLyricsParams, api.params)
    base = base_url(request, state.settings.public_url)
    found = await state.db.aread(lambda catalog: search_lyrics(catalog, p.q, limit=10))  # on the read pool
    return [lyrics_hit(t, base) for t in found]


async def upload(state: AppState, request: Request, api: ApiRequest) -> object:
    """AudD's custom catalog: fingerprint the audio and store it under ``audio_id``."""
    await authorize(state, request, api.get("api_token"), scope="catalog:write", count=False)
    audio_id = parse(UploadParams, api.params).audio_id
    extracted = await recognition_service(state).extract(await audio_bytes(state, api))
    source = api.get("url") or "upload"
    await state.write_store(lambda store: replace_upload_slot(store, audio_id, extracted, source))  # the writer thread
    return None


HANDLERS: dict[str, Handler] = {
    "recognize": recognize,
    "recognizeWithOffset": recognize_with_offset,
    "findLyrics": find_lyrics,
    "upload": upload,
}


# Documented from the models (audd/schema.py); each other method has its own path (method_paths.py).
_RECOGNIZE_DOCS = {
    "summary": "recognize (or the method named by `method`)",
    "openapi_extra": form_body(RecognizeParams, audio=True),
    "responses": {200: {"model": models.RecognizeSuccess | models.ErrorEnvelope, "description": "AudD's envelope"}},
}


@router.post("/", operation_id="recognize", **_RECOGNIZE_DOCS)  # type: ignore[arg-type]
@router.get("/", operation_id="recognizeGet", **_RECOGNIZE_DOCS)  # type: ignore[arg-type]
async def root(request: Request) -> Response:
    return await answer(request, None)


@router.api_route("/{method}", methods=["GET", "POST"], include_in_schema=False)
@router.api_route("/{method}/", methods=["GET", "POST"], include_in_schema=False)
async def by_path(request: Request, method: str) -> Response:
    return await answer(request, method)
