"""One documented path per AudD method (``/findLyrics/``, ``/addStream/`` …; ``recognize`` is ``/``,
in methods.py), its form body and its answers generated from the parameter and response models
(audd/schema.py).

Each path answers exactly as ``/<method>/`` does (methods.py ``answer``); it exists so that the
OpenAPI schema lists AudD's methods as AudD's own description does. ``document_longpoll`` adds the
query parameters and answers of ``GET /longpoll/``, whose route reads its query string itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from soundmark.api.routes import enterprise, methods, streams
from soundmark.audd import models
from soundmark.audd.schema import form_body, query_parameters, response_schema


@dataclass(frozen=True)
class MethodDoc:
    name: str
    summary: str
    params: type[BaseModel]
    answer: Any  # the success model (an error answers ErrorEnvelope)
    audio: bool = False


METHODS = (
    MethodDoc("findLyrics", "search the catalog's lyrics", methods.FindLyricsParams, models.FindLyricsSuccess),
    MethodDoc(
        "upload", "add audio to the custom catalog under audio_id", methods.UploadParams, models.EmptySuccess, True
    ),
    MethodDoc(
        "enterprise",
        "every catalog track in a long recording, by 12-second chunks",
        enterprise.EnterpriseParams,
        models.EnterpriseSuccess,
        True,
    ),
    MethodDoc("setCallbackUrl", "where stream events are POSTed", streams.UrlParams, models.EmptySuccess),
    MethodDoc(
        "getCallbackUrl", "the URL stream events are POSTed to", streams.TokenParams, models.GetCallbackUrlSuccess
    ),
    MethodDoc("addStream", "monitor a live stream", streams.AddStreamParams, models.EmptySuccess),
    MethodDoc("setStreamUrl", "change a stream's URL", streams.StreamUrlParams, models.EmptySuccess),
    MethodDoc("getStreams", "the streams monitored for this api_token", streams.TokenParams, models.GetStreamsSuccess),
    MethodDoc("deleteStream", "stop monitoring a stream", streams.StreamParams, models.EmptySuccess),
)


def openapi_extra(doc: MethodDoc) -> dict[str, Any]:
    return form_body(doc.params, audio=doc.audio)


def responses(doc: MethodDoc) -> dict[int | str, dict[str, Any]]:
    """AudD answers every method with HTTP 200: the success envelope or the error envelope."""
    answer: dict[str, Any] = {"model": doc.answer | models.ErrorEnvelope, "description": "AudD's envelope"}
    if doc.name == "enterprise":
        answer["content"] = {"text/csv": {"schema": {"type": "string"}}}  # response_type=csv
    return {200: answer}


def _endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await methods.answer(request, name)

    endpoint.__name__ = name
    return endpoint


def build_router() -> APIRouter:
    router = APIRouter(tags=["AudD methods"])
    for doc in METHODS:
        for http, operation_id in (("POST", doc.name), ("GET", f"{doc.name}Get")):
            router.add_api_route(
                f"/{doc.name}/", _endpoint(doc.name), methods=[http], summary=doc.summary,
                openapi_extra=openapi_extra(doc), responses=responses(doc), operation_id=operation_id,
            )  # fmt: skip
    return router


router = build_router()

LONGPOLL_PATH = "/longpoll/"


def document_longpoll(schema: dict[str, Any]) -> None:
    """Add ``GET /longpoll/``'s query parameters and answers to a generated OpenAPI ``schema``."""
    operation = schema.get("paths", {}).get(LONGPOLL_PATH, {}).get("get")
    if operation is None:
        return
    answer, defs = response_schema(models.LongpollTimeout | models.LongpollEvents)
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
    operation["parameters"] = query_parameters(streams.LongpollParams)
    operation["operationId"] = "longpoll"
    operation["responses"] = {
        "200": {
            "description": "an event, or no event before the timeout",
            "content": {"application/json": {"schema": answer}},
        },
        "400": {"description": 'a malformed parameter (golongpoll\'s `{"error": ...}`)'},
    }


def install(app: FastAPI) -> None:
    """Mount the method paths (before methods.py's ``/{method}/``, which they would otherwise
    fall through to) and document ``/longpoll/`` in ``app``'s generated schema."""
    app.include_router(router)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_longpoll(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
