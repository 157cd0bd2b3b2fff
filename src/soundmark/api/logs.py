"""Structured logs: one JSON object per line, and a request log that never shows a token."""

from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soundmark.audd.errors import is_secret_key


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(json_logs: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("soundmark")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def redact(query: str) -> str:
    """The query string as the server decodes it (``api%5Ftoken`` is ``api_token``, as for the
    handlers), re-encoded, with the value of every token-like parameter replaced by ``***``."""
    pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")
    return urlencode([(k, "***" if is_secret_key(k) else v) for k, v in pairs], safe=",:/*")


class AccessLog:
    """ASGI middleware writing one structured line per HTTP request (uvicorn's own access log is
    off because it would print query strings with tokens in them)."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.log = logging.getLogger("soundmark.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            query = redact(scope.get("query_string", b"").decode("latin-1"))
            client = scope.get("client")
            self.log.info(
                "request",
                extra={"fields": {
                    "method": scope["method"], "path": scope["path"], "query": query, "status": status,
                    "ms": round((time.perf_counter() - start) * 1000, 1),
                    "client": client[0] if client else None,
                }},
            )  # fmt: skip
