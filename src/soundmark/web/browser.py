"""Which requests to ``/`` are a person's browser: those get the Listen page, every other one the
AudD API exactly as before (``api/routes/methods.py``).

A browser's request is a GET without a query string whose ``Accept`` names ``text/html`` (curl,
the AudD SDKs and ``fetch`` send ``*/*`` or JSON). Any query string, any body, any other method
goes to the API: an API call never lands on the page.
"""

from __future__ import annotations

from fastapi.routing import APIRoute
from starlette.datastructures import MutableHeaders
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def accepts_html(accept: str) -> bool:
    """``Accept`` names ``text/html`` (or ``application/xhtml+xml``) without ``q=0``."""
    for part in accept.split(","):
        kind, *options = (p.strip() for p in part.split(";"))
        if kind.lower() in ("text/html", "application/xhtml+xml"):
            weights = [o.split("=", 1)[1].strip() for o in options if o.replace(" ", "").lower().startswith("q=")]
            try:
                if not weights or float(weights[0]) > 0:
                    return True
            except ValueError:
                return False
    return False


def is_browser_page_request(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
        return False
    headers = dict(scope.get("headers") or [])
    if headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers:
        return False  # a GET with a body: an API client
    return accepts_html(headers.get(b"accept", b"").decode("latin-1"))


class BrowserPageRoute(APIRoute):
    """A route that matches only a browser's page request; any other falls through to the next
    route with the same path (the API's)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not is_browser_page_request(scope):
            return Match.NONE, {}
        return super().matches(scope)


class VaryOnAccept:
    """ASGI middleware: every answer at a URL that is both a page and an API method (``/``, and a
    job's ``/jobs/<id>``) says it varies with ``Accept``, the page and the API's JSON alike, so a
    cache between browser and server never hands one to the other."""

    def __init__(self, app: ASGIApp, paths: tuple[str, ...] = ("/",), prefixes: tuple[str, ...] = ()):
        self.app = app
        self.paths = paths
        self.prefixes = prefixes

    def _shared(self, path: str) -> bool:
        return path in self.paths or any(path.startswith(p) for p in self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._shared(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_varied(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "accept" not in headers.get("vary", "").lower():
                    headers.add_vary_header("Accept")
            await send(message)

        await self.app(scope, receive, send_varied)
