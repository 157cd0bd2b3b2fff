"""Where this server answers from: the base URL a ``song_link`` starts with (``public_url`` or the
request's own), and the operator an error body names.

The answers themselves are built by ``soundmark.audd.presenter`` as ``soundmark.audd.models``."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from soundmark.audd.errors import DEFAULT_CONTACT, DEFAULT_DOCS_PATH, Operator
from soundmark.settings import Settings


def base_url(conn: HTTPConnection, configured: str) -> str:
    if configured:
        return configured.rstrip("/")
    url = conn.base_url
    if url.scheme in ("ws", "wss"):  # a WebSocket's song_link must still be an http(s) page
        url = url.replace(scheme="https" if url.scheme == "wss" else "http")
    return str(url).rstrip("/")


def operator(conn: HTTPConnection, settings: Settings) -> Operator:
    """The contact and documentation URL error bodies name: the operator's settings, else this
    server's own ``/docs`` (under ``public_url`` or the request's host)."""
    docs = settings.docs_url or base_url(conn, settings.public_url) + DEFAULT_DOCS_PATH
    return Operator(contact=settings.contact or DEFAULT_CONTACT, docs_url=docs)
