"""``/tokens`` (admin): the API tokens with their usage this month; create one (shown once), revoke
one. Every change goes through ``services/accounts.py`` on the server's one writer."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from soundmark.api.state import app_state
from soundmark.auth.tokens import DEFAULT_SCOPES, TokenStore
from soundmark.catalog.sql import Connection
from soundmark.services.accounts import AccountService, NewToken, TokenView
from soundmark.services.errors import ServiceError
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import Visitor, admin_form, visitor

router = APIRouter(include_in_schema=False)
PATH = "/tokens"


def to_login(path: str) -> Response:
    return secure(RedirectResponse(f"/login?next={path}", status_code=303))


async def _page(
    request: Request, who: Visitor, *, created: NewToken | None = None, message: str = "", status: int = 200
) -> Response:
    state = app_state(request)
    tokens: list[TokenView] = await state.db.aread(lambda catalog: AccountService(TokenStore(catalog.conn)).list())
    return pages_of(request).render(
        request, "tokens.html", who, status=status, tokens=tokens, created=created, message=message,
        default_scopes=",".join(DEFAULT_SCOPES),
    )  # fmt: skip


@router.get(PATH)
async def tokens_page(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    return await _page(request, who)


def _limit(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 12:
        raise ServiceError(50, "the monthly limit must be a whole number (or empty for no limit)")
    return int(text)


@router.post(PATH)
async def create_token(request: Request) -> Response:
    sent = await admin_form(request)
    if sent is None:
        return to_login(PATH)
    who, _, form = sent
    try:
        limit = _limit(form.get("limit", ""))
        scopes = [s.strip() for s in form.get("scopes", "").split(",") if s.strip()]
        name = form.get("name", "")

        def create(conn: Connection) -> NewToken:
            return AccountService(TokenStore(conn)).create(name, scopes=scopes, limit_per_month=limit)

        created = await app_state(request).db.awrite(create)
    except ServiceError as exc:
        return await _page(request, who, message=f"Not created: {exc}", status=400)
    return await _page(request, who, created=created)


@router.post(f"{PATH}/revoke")
async def revoke_token(request: Request) -> Response:
    sent = await admin_form(request)
    if sent is None:
        return to_login(PATH)
    who, _, form = sent
    key = form.get("id", "")
    try:
        await app_state(request).db.awrite(lambda conn: AccountService(TokenStore(conn)).revoke(key))
    except ServiceError as exc:
        return await _page(request, who, message=f"Not revoked: {exc}", status=400)
    return secure(RedirectResponse(PATH, status_code=303))
