"""The security headers of every web page and asset: a Content-Security-Policy without inline
scripts, no MIME sniffing, no referrer to other sites, no framing by other sites."""

from __future__ import annotations

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

# No inline script or style anywhere: scripts, styles and the audio worklet come from this server.
# Covers may be on a provider's https host (the catalog's metadata); the Listen page talks to this
# server only (fetch to `/`, the `/ws/` WebSocket: 'self' covers ws(s) of the same host).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data: blob:",  # blob: the "why it matched" picture fetched by the page
        "connect-src 'self'",
        "media-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}


def secure(response: Response, *, private: bool = False) -> Response:
    """``response`` with the web app's security headers; ``private``: a page that must not be
    cached (a logged-in page, a form with its CSRF token)."""
    response.headers.update(HEADERS)
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


class SecureStaticFiles(StaticFiles):
    """The web app's assets with the same headers as its pages."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_secured)
