"""Read an API request the way AudD does: parameters from the query string, an urlencoded or
multipart body, or a JSON object body, in any mix; audio from ``file``, ``audio`` or ``url``."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from soundmark.api.errors import ApiError


class BodyTooLarge(Exception):
    pass


@dataclass
class ApiRequest:
    params: dict[str, str]
    file: bytes | None
    http_method: str

    def get(self, key: str, default: str = "") -> str:
        return self.params.get(key, default).strip()


def limit_body(request: Request, max_bytes: int) -> None:
    """Make reading the body fail once it exceeds ``max_bytes`` (also without Content-Length)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    receive = request._receive
    seen = 0

    async def limited():  # type: ignore[no-untyped-def]
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge
        return message

    request._receive = limited


async def read_request(request: Request, max_body: int) -> ApiRequest:
    """Collect parameters and an uploaded file; raise BodyTooLarge past ``max_body`` bytes."""
    params: dict[str, str] = {k: v for k, v in request.query_params.items()}
    file: bytes | None = None
    if request.method in ("POST", "PUT", "PATCH"):
        limit_body(request, max_body)
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                form = await request.form(max_files=4, max_fields=200, max_part_size=max_body)
            except (BodyTooLarge, ClientDisconnect):
                raise
            except Exception as exc:
                raise ApiError(50, f"the request body could not be parsed ({type(exc).__name__}).") from exc
            try:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        if key in ("file", "audio") and file is None:
                            file = await value.read()
                    else:
                        params[key] = value
            finally:
                await form.close()
        else:
            body = await request.body()
            parsed = _json_object(body)
            if parsed is not None:
                params.update({_utf8(k): _utf8(v if isinstance(v, str) else json.dumps(v)) for k, v in parsed.items()})
            elif body and ctype.startswith(("audio/", "video/", "application/octet-stream")):
                file = body  # a raw audio body, as curl --data-binary sends it
    return ApiRequest(params, file, request.method)


def _json_object(body: bytes) -> dict[str, object] | None:
    text = body.strip()
    if not text.startswith(b"{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    return value if isinstance(value, dict) else None


def _utf8(text: str) -> str:
    """``text`` with lone surrogates (JSON allows ``"\\ud800"``) replaced, so that it can be echoed."""
    return text.encode("utf-8", "replace").decode("utf-8")


def decode_base64_audio(value: str) -> bytes:
    """The ``audio`` parameter: base64 (standard or url-safe, with or without a data: prefix)."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    compact = "".join(value.split())
    try:
        data = base64.b64decode(
            compact + "=" * (-len(compact) % 4),
            altchars=b"-_" if "-" in compact or "_" in compact else None,
            validate=True,
        )
    except (binascii.Error, ValueError) as exc:
        raise ApiError(500, "the `audio` parameter is not valid base64.") from exc
    if not data:
        raise ApiError(700)
    return data
