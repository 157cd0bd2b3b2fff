"""``/login`` and ``/logout``: an admin token exchanged for a session cookie, and the session ended."""

from __future__ import annotations

import re

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from soundmark.api.state import app_state
from soundmark.services.errors import ServiceError
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import (
    LOGIN_CSRF_COOKIE,
    Visitor,
    check_admin_token,
    check_csrf,
    clear_session_cookie,
    close_session,
    login_csrf,
    open_session,
    read_form,
    set_login_csrf_cookie,
    set_session_cookie,
    visitor,
)

router = APIRouter(include_in_schema=False)
AFTER_LOGIN = "/tokens"
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9/_.-]{0,200}")  # a page of this site, never //host or a scheme


def next_page(value: str) -> str:
    value = value.strip()
    return value if _LOCAL_PATH.fullmatch(value) and not value.startswith("//") else AFTER_LOGIN


def login_page(request: Request, *, message: str = "", status: int = 200, after: str = AFTER_LOGIN) -> Response:
    csrf = login_csrf(request)
    response = pages_of(request).render(
        request, "login.html", Visitor(None), status=status, csrf=csrf, message=message, after=next_page(after)
    )
    set_login_csrf_cookie(response, request, csrf)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    who = await visitor(request)
    after = request.query_params.get("next", AFTER_LOGIN)
    if who.admin:
        return secure(RedirectResponse(next_page(after), status_code=303))
    return login_page(request, after=after)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request, form.get("csrf", ""), request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    after = form.get("next", AFTER_LOGIN)
    state = app_state(request)
    token = form.get("token", "")
    if not token.strip():
        return login_page(request, message="Enter an admin token.", status=401, after=after)
    try:
        info = await state.db.aread(lambda catalog: check_admin_token(catalog, token))
    except ServiceError as exc:
        text = "This token is not an admin token." if exc.code == 904 else "Unknown or revoked token."
        return login_page(request, message=text, status=401 if exc.code == 900 else 403, after=after)
    opened = await open_session(state, info)
    response = RedirectResponse(next_page(after), status_code=303)
    set_session_cookie(response, request, opened, state.settings.web_session_hours * 3600)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return secure(response, private=True)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await read_form(request)
    who = await visitor(request)
    if who.session is not None:
        check_csrf(request, form.get("csrf", ""), who.session.csrf)
        await close_session(request)
    response = RedirectResponse("/", status_code=303)
    clear_session_cookie(response, request)
    return secure(response, private=True)
