"""Read an API request the way AudD does: parameters from the query string, an urlencoded or
multipart body, or a JSON object body, in any mix; audio from ``file``, ``audio`` or ``url``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from soundmark.audd.errors import ApiError


class BodyTooLarge(Exception):
    pass


# Uploaded files larger than this are not read into memory: they stay in a temporary file
# (``ApiRequest.file_path``) that is deleted when the request object goes away.
SPOOL_BYTES = 16 * 1024 * 1024


@dataclass
class ApiRequest:
    params: dict[str, str]
    file: bytes | None
    http_method: str
    file_path: Path | None = None  # a large upload, kept on disk instead of in ``file``

    def get(self, key: str, default: str = "") -> str:
        return self.params.get(key, default).strip()

    def keep_file(self, path: Path) -> None:
        """Own the large upload at ``path``: it is deleted with this request object (or by
        ``discard_file``) unless a handler moved it elsewhere first."""
        self.file_path = path
        weakref.finalize(self, _unlink, str(path))

    def discard_file(self) -> None:
        if self.file_path is not None:
            _unlink(str(self.file_path))


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _spool_to_disk(upload: UploadFile) -> Path:
    """Copy a (spooled) upload into a named temporary file without reading it whole."""
    upload.file.seek(0)
    fd, name = tempfile.mkstemp(prefix="soundmark-upload-", suffix=".bin")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(upload.file, out, 1024 * 1024)
    except BaseException:
        _unlink(name)
        raise
    return Path(name)


def limit_body(request: Request, max_bytes: int) -> None:
    """Make reading the body fail once it exceeds ``max_bytes`` (also without Content-Length)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    receive = request._receive
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise BodyTooLarge
        return message

    request._receive = limited


async def read_request(request: Request, max_body: int, *, spool_bytes: int = SPOOL_BYTES) -> ApiRequest:
    """Collect parameters and an uploaded file; raise BodyTooLarge past ``max_body`` bytes.

    An uploaded file over ``spool_bytes`` stays on disk (``ApiRequest.file_path``).
    """
    params: dict[str, str] = {k: v for k, v in request.query_params.items()}
    file: bytes | None = None
    big: Path | None = None
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
                        if key in ("file", "audio") and file is None and big is None:
                            if value.size is not None and value.size > spool_bytes:
                                big = await asyncio.to_thread(_spool_to_disk, value)
                            else:
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
    api = ApiRequest(params, file, request.method)
    if big is not None:
        api.keep_file(big)
    return api


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
