"""Account use cases: API tokens created, listed, revoked and looked up, with their usage.

``soundmark token`` is one caller; the server authorises requests with ``api/auth.py`` over the
same ``TokenStore``. What leaves this module about a token is a ``TokenView``: never the token
nor its hash. A refused request raises ``ServiceError`` (AudD's 900/904 for authentication,
50 for a malformed request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from soundmark.auth.tokens import TokenInfo, TokenStore
from soundmark.services.errors import ServiceError


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class TokenView:
    """What may be shown about a token, and its usage this calendar month (UTC)."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    limit_per_month: int | None  # None: unlimited
    used_this_month: int
    created_at: str | None  # ISO 8601, UTC
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def of(cls, info: TokenInfo) -> TokenView:
        return cls(
            id=info.id, name=info.name, prefix=info.prefix, scopes=tuple(sorted(info.scopes)),
            limit_per_month=info.limit_per_month, used_this_month=info.used_this_month,
            created_at=_iso(info.created_at), revoked_at=_iso(info.revoked_at),
        )  # fmt: skip


@dataclass(frozen=True)
class NewToken:
    """A created token: the plain token, shown only now, and its view."""

    token: str
    view: TokenView


class AccountService:
    def __init__(self, tokens: TokenStore):
        self._tokens = tokens

    def create(
        self, name: str, *, scopes: list[str], limit_per_month: int | None = None, value: str | None = None
    ) -> NewToken:
        """A new token (``value``: an existing token to import instead of a random one)."""
        try:
            token, info = self._tokens.create(name, limit_per_month=limit_per_month, scopes=scopes, value=value)
        except ValueError as exc:
            raise ServiceError(50, str(exc)) from exc
        return NewToken(token, TokenView.of(info))

    def list(self) -> list[TokenView]:
        return [TokenView.of(info) for info in self._tokens.list()]

    def revoke(self, id_or_prefix: str) -> None:
        """Revoke the active token with this id or prefix; ServiceError 50 when none (or several)."""
        try:
            done = self._tokens.revoke(id_or_prefix)
        except ValueError as exc:
            raise ServiceError(50, str(exc)) from exc
        if not done:
            raise ServiceError(50, f"no active token {id_or_prefix!r}")

    def usage(self, id_or_prefix: str) -> TokenView:
        """One token (by id or prefix) with its usage this month."""
        key = id_or_prefix.strip()
        matches = [v for v in self.list() if str(v.id) == key or v.prefix == key]
        if len(matches) != 1:
            raise ServiceError(50, f"no token {id_or_prefix!r}" if not matches else f"prefix {key!r} is ambiguous")
        return matches[0]

    def authenticate(self, token: str, scope: str) -> TokenInfo:
        """The active token ``token`` when it has ``scope``; ServiceError 900 / 904 otherwise."""
        info = self._tokens.authenticate(token)
        if info is None:
            raise ServiceError(900, "unknown or revoked token")
        if not info.has_scope(scope):
            raise ServiceError(904, f"the token lacks the `{scope}` scope")
        return info
