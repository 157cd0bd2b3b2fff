"""``POST /explain``: why an upload matched (or did not), as a picture or as the evidence.

The audio and parameters are read as AudD's ``recognize`` reads them (``file``, ``audio`` or
``url``; query string, form or JSON body) under the same limits, the same token check and quota
charge, and the same errors (AudD's envelope). ``format=png`` (default) answers ``image/png``,
``format=svg`` ``image/svg+xml``, ``format=json`` the evidence numbers (``match/explain.py``).
"""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from soundmark.api.auth import authorize
from soundmark.api.errors import api_error
from soundmark.api.origin import operator
from soundmark.api.params import ApiRequest, BodyTooLarge, read_request
from soundmark.api.recognition import recognition_service
from soundmark.api.routes.methods import audio_bytes
from soundmark.api.state import AppState, app_state
from soundmark.audd.errors import ApiError, RequestEcho, error_body
from soundmark.audd.schema import form_body
from soundmark.audd.typed import Params, Text, parse
from soundmark.errors import SoundmarkError
from soundmark.services.explain import ExplainService

router = APIRouter()
METHOD = "explain"  # the metrics' label
ECHO = "recognize"  # errors read as recognize's ("Recognition failed: …")
MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}  # (render/ is imported by the workers only)


class ExplainParams(Params):
    """What ``/explain`` reads besides the audio."""

    api_token: Text = ""
    format: Literal["png", "svg", "json"] = "png"


_DOCS = {
    "summary": "why the audio matched (or not): a picture (png, svg) or the evidence (json)",
    "openapi_extra": form_body(ExplainParams, audio=True),
    "responses": {
        200: {
            "description": "the picture, the evidence as JSON, or AudD's error envelope",
            "content": {"image/png": {}, "image/svg+xml": {}, "application/json": {}},
        }
    },
}


@router.post("/explain", operation_id="explain", **_DOCS)  # type: ignore[arg-type]
async def explain(request: Request) -> Response:
    state = app_state(request)
    start = time.perf_counter()
    api = ApiRequest(dict(request.query_params), None, request.method)
    max_body = state.settings.max_upload_bytes
    outcome = "success"
    try:
        api = await read_request(request, max_body * 4 // 3 + 65536)
        answer = await _explain(state, request, api)
    except ApiError as exc:
        outcome = str(exc.code)
        answer = JSONResponse(_error(state, request, api, exc.code, exc.message))
    except BodyTooLarge:
        outcome = "400"
        limit = max_body // (1024 * 1024)
        answer = JSONResponse(_error(state, request, api, 400, f"the request is too big: {limit} MB is the maximum."))
    except ClientDisconnect:
        return Response(status_code=400)
    state.metrics.requests.labels(METHOD, "success" if outcome == "success" else "error").inc()
    if outcome != "success":
        state.metrics.errors.labels(outcome).inc()
    state.metrics.latency.labels(METHOD).observe(time.perf_counter() - start)
    return answer


async def _explain(state: AppState, request: Request, api: ApiRequest) -> Response:
    await authorize(state, request, api.get("api_token"), scope="recognize", allow_demo=True)
    p = parse(ExplainParams, api.params)
    recognition = recognition_service(state)
    service = ExplainService(recognition, state.pool, state.settings)
    try:
        found = await service.explain(await audio_bytes(state, api), None if p.format == "json" else p.format)
    except SoundmarkError as exc:  # the use case refused it: AudD's code and sentence
        raise api_error(exc) from exc
    state.metrics.matches.labels("match" if found.explanation.matched else "no_match").inc()
    if p.format == "json" or found.picture is None:
        return JSONResponse({"status": "success", "result": found.explanation.to_dict()})
    return Response(found.picture, media_type=MEDIA_TYPES[p.format], headers={"Cache-Control": "no-store"})


def _error(state: AppState, request: Request, api: ApiRequest, code: int, message: str) -> dict[str, object]:
    echo = RequestEcho(ECHO, request.method, api.params)
    return error_body(code, message, echo, operator=operator(request, state.settings))
