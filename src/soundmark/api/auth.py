"""Who is asking, and may they: tokens, scopes and quotas for one request.

The check runs on a read thread (``state.db.reads``) and never waits for SQLite's write lock:
the token is read, and the request is admitted against its quota and counted by
``state.usage``, which writes the counts through the database writer afterwards.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from soundmark.api.state import AppState
from soundmark.audd.errors import ApiError
from soundmark.auth.tokens import TokenInfo
from soundmark.catalog.sqlite import Catalog


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


# AudD's public demo token: accepted only where the operator enables it (``demo_token``), for
# recognition, within ``demo_per_day`` requests per client address and day.
DEMO_TOKEN = "test"


async def authorize(
    state: AppState, conn: HTTPConnection, token: str, *, scope: str, count: bool = True, allow_demo: bool = False
) -> TokenInfo | None:
    """The caller's token (None when anonymous or the demo token, and allowed), or an ApiError
    with AudD's code.

    ``count`` charges one request to the token's monthly quota (or the client's daily
    anonymous / demo quota). ``allow_demo``: the method is one of the standard endpoint's
    recognition methods, which AudD's demo token ``test`` may use.
    """
    client = client_address(conn)

    def check(catalog: Catalog) -> TokenInfo | None:
        return _check(state, catalog, client, token, scope=scope, count=count, allow_demo=allow_demo)

    return await state.db.aread(check)


def _check(
    state: AppState, catalog: Catalog, client: str, token: str, *, scope: str, count: bool, allow_demo: bool
) -> TokenInfo | None:
    """``authorize`` on a read connection (blocking, but never for a lock)."""
    usage = state.usage
    if token == DEMO_TOKEN and state.settings.demo_token:
        if not allow_demo or scope != "recognize":
            raise ApiError(904, "the demo api_token `test` only works for recognition.")
        if count and not usage.consume_anonymous(catalog, f"demo:{client}", state.settings.demo_per_day):
            raise ApiError(902, "authorization failed: the daily limit of the demo api_token `test` was reached.")
        return None
    if token:
        info = usage.authenticate(catalog, token)
        if info is None:
            raise ApiError(900)
        if not info.has_scope(scope):
            raise ApiError(904)
        if count and not usage.consume(catalog, info):
            raise ApiError(902)
        return info
    if state.settings.require_token or scope != "recognize":
        raise ApiError(900, "authorization failed: this method needs an api_token.")
    if count and not usage.consume_anonymous(catalog, client, state.settings.anonymous_per_day):
        raise ApiError(901)
    return None
