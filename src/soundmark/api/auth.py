"""Who is asking, and may they: tokens, scopes and quotas for one request."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from soundmark.api.state import AppState
from soundmark.audd.errors import ApiError
from soundmark.auth.tokens import TokenInfo


def client_address(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


# AudD's public demo token: accepted only where the operator enables it (``demo_token``), for
# recognition, within ``demo_per_day`` requests per client address and day.
DEMO_TOKEN = "test"


def authorize(
    state: AppState, conn: HTTPConnection, token: str, *, scope: str, count: bool = True, allow_demo: bool = False
) -> TokenInfo | None:
    """The caller's token (None when anonymous or the demo token, and allowed), or an ApiError
    with AudD's code.

    ``count`` charges one request to the token's monthly quota (or the client's daily
    anonymous / demo quota). ``allow_demo``: the method is one of the standard endpoint's
    recognition methods, which AudD's demo token ``test`` may use.
    """
    if token == DEMO_TOKEN and state.settings.demo_token:
        if not allow_demo or scope != "recognize":
            raise ApiError(904, "the demo api_token `test` only works for recognition.")
        demo_client = f"demo:{client_address(conn)}"
        if count and not state.tokens.consume_anonymous(demo_client, state.settings.demo_per_day):
            raise ApiError(902, "authorization failed: the daily limit of the demo api_token `test` was reached.")
        return None
    if token:
        info = state.tokens.authenticate(token)
        if info is None:
            raise ApiError(900)
        if not info.has_scope(scope):
            raise ApiError(904)
        if count and not state.tokens.consume(info):
            raise ApiError(902)
        return info
    if state.settings.require_token or scope != "recognize":
        raise ApiError(900, "authorization failed: this method needs an api_token.")
    if count and not state.tokens.consume_anonymous(client_address(conn), state.settings.anonymous_per_day):
        raise ApiError(901)
    return None
