"""The admin session of a browser: its cookie, its lookup, and the CSRF checks of its forms.

Login exchanges a token holding the ``admin`` scope (``services/accounts.py`` checks it) for a
server-side session (``auth/sessions.py``, rows written through the server's one writer). The
cookie carries only the random session id: HttpOnly, SameSite=Lax, Secure when the request came
over https. Each session has its CSRF token, which every form of it must send back; the login
form itself (before any session) is protected by a double-submit cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from soundmark.api.state import AppState, app_state
from soundmark.auth.sessions import OpenedSession, SessionStore, WebSession
from soundmark.auth.tokens import TokenInfo, TokenStore
from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import Catalog
from soundmark.services.accounts import AccountService

ADMIN_SCOPE = "admin"
SESSION_COOKIE = "soundmark_session"
LOGIN_CSRF_COOKIE = "soundmark_login_csrf"
LOGIN_CSRF_SECONDS = 3600
MAX_FORM_BYTES = 64 * 1024  # the web app's forms are a few short fields


class PageRefused(Exception):
    """A request the web app refuses, answered with an error page of ``status``."""

    status = 400
    title = "Bad request"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CsrfRefused(PageRefused):
    """A form without the right CSRF token, or a cross-site POST."""

    status = 403
    title = "Refused: the form's security check failed"


@dataclass(frozen=True)
class Visitor:
    """Who is looking at a page: the admin session, or None for an anonymous visitor."""

    session: WebSession | None

    @property
    def admin(self) -> bool:
        return self.session is not None


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


async def visitor(request: Request) -> Visitor:
    """The request's session, read on the read pool (expired, revoked: anonymous)."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id:
        return Visitor(None)
    state = app_state(request)
    found = await state.db.aread(lambda catalog: SessionStore(catalog.conn).find(session_id, ADMIN_SCOPE))
    return Visitor(found)


def check_admin_token(catalog: Catalog, token: str) -> TokenInfo:
    """The active token ``token`` holding the admin scope (ServiceError 900/904 otherwise)."""
    return AccountService(TokenStore(catalog.conn)).authenticate(token.strip(), ADMIN_SCOPE)


async def open_session(state: AppState, info: TokenInfo) -> OpenedSession:
    lifetime = state.settings.web_session_hours * 3600

    def write(conn: Connection) -> OpenedSession:
        store = SessionStore(conn)
        store.prune()
        return store.open(info.id, info.name, lifetime)

    return await state.db.awrite(write)


async def close_session(request: Request) -> None:
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if session_id:
        await app_state(request).db.awrite(lambda conn: SessionStore(conn).close(session_id))


def set_session_cookie(response: Response, request: Request, opened: OpenedSession, lifetime_s: float) -> None:
    response.set_cookie(
        SESSION_COOKIE, opened.id, max_age=int(lifetime_s), path="/", httponly=True, samesite="lax",
        secure=is_https(request),
    )  # fmt: skip


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(request))


def login_csrf(request: Request) -> str:
    """The login form's CSRF value: the browser's current one, or a new one to set."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 and current.isascii() else secrets.token_urlsafe(32)


def set_login_csrf_cookie(response: Response, request: Request, value: str) -> None:
    response.set_cookie(
        LOGIN_CSRF_COOKIE, value, max_age=LOGIN_CSRF_SECONDS, path="/login", httponly=True, samesite="strict",
        secure=is_https(request),
    )  # fmt: skip


def check_origin(request: Request) -> None:
    """Refuse a POST another site's page sent (its ``Origin`` or ``Referer`` names another host)."""
    origin = request.headers.get("origin") or ""
    if origin and origin != "null":
        own = f"{request.url.scheme}://{request.url.netloc}"
        if origin.rstrip("/") != own:
            raise CsrfRefused("the form was sent from another site.")


def check_csrf(request: Request, sent: str, expected: str) -> None:
    check_origin(request)
    if not sent or not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRefused("the form's security token is missing or out of date.")


async def read_form(request: Request) -> dict[str, str]:
    """A web form's text fields (files are not accepted here; a body over 64 KiB is refused)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise PageRefused("the form is too large.")
    ctype = request.headers.get("content-type", "").lower()
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    try:
        form = await request.form(max_files=0, max_fields=50)
    except Exception as exc:  # python-multipart's parse errors have no common base class
        raise PageRefused(f"the form could not be read ({type(exc).__name__}).") from exc
    try:
        return {k: v for k, v in form.multi_items() if isinstance(v, str)}
    finally:
        await form.close()


async def admin_form(request: Request) -> tuple[Visitor, WebSession, dict[str, str]] | None:
    """The form of an admin page's POST with its CSRF token checked (``CsrfRefused`` if wrong), and
    who sent it; None when there is no session (the caller sends the browser to the login)."""
    form = await read_form(request)
    who = await visitor(request)
    if who.session is None:
        return None
    check_csrf(request, form.get("csrf", ""), who.session.csrf)
    return who, who.session, form
