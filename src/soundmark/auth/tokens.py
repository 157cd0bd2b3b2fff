"""API tokens kept in the catalog: only their hashes are stored, usage is counted per month.

A token is 32 random bytes from ``secrets`` written as URL-safe text. It is shown once, when
created; the catalog keeps its SHA-256 and a short non-secret prefix for listing and revoking.
Quota counters are bumped with one conditional UPSERT each, which SQLite runs atomically under
its write lock and PostgreSQL atomically on its own (``ON CONFLICT DO UPDATE ... WHERE`` checks
the latest committed count, a concurrent one waits for the row), so the stored count never
passes a token's limit, whichever processes or nodes share the catalog. The server does not
wait for SQLite's lock on a request: it admits on a read and writes the counts in the background
through its single writer (exact within one process); on PostgreSQL the UPSERT itself admits the
request (auth/usage.py).
"""

from __future__ import annotations

import builtins
import hashlib
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from soundmark.catalog.sql import Connection, Row
from soundmark.catalog.sqlite import Catalog

DEFAULT_SCOPES: tuple[str, ...] = ("recognize", "catalog:write", "streams")
MIN_IMPORTED_CHARS = 8
PREFIX_CHARS = 6
TOKEN_BYTES = 32
_MAX_TOKEN_CHARS = 512  # anything longer cannot be one of ours; do not bother hashing it
_SCOPE_RE = re.compile(r"^[a-z0-9][a-z0-9:_.-]*$")


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as the server sees it (never the token itself)."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    limit_per_month: int | None  # None: unlimited
    created_at: float  # unix time
    revoked_at: float | None
    used_this_month: int

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def remaining_this_month(self) -> int | None:
        """Requests left this month as of when this record was read; None when unlimited."""
        if self.limit_per_month is None:
            return None
        return max(0, self.limit_per_month - self.used_this_month)


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain (unsalted, fast) SHA-256 is enough: there
    # is no dictionary to attack and no way to brute-force the preimage. Salting would only stop
    # the lookup by hash that makes authentication a single indexed query.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mask_token(token: str) -> str:
    """Redact a token the way AudD echoes it back: first char, ``***``, last char."""
    if not token:
        return ""
    if len(token) <= 2:
        return "***"
    return f"{token[0]}***{token[-1]}"


def _utc(now: datetime | None) -> datetime:
    """``now`` in UTC (a naive datetime is taken to be UTC already)."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def month_period(now: datetime | None = None) -> str:
    """The usage period of ``now``: its UTC month, 'YYYY-MM'."""
    return _utc(now).strftime("%Y-%m")


def utc_day(now: datetime | None = None) -> str:
    """The UTC day of ``now``, 'YYYY-MM-DD'."""
    return _utc(now).strftime("%Y-%m-%d")


def _check_scopes(scopes: Iterable[str]) -> frozenset[str]:
    if isinstance(scopes, str):
        raise TypeError("scopes must be an iterable of scope names, not one string")
    out = frozenset(s.strip() for s in scopes)
    if not out:
        raise ValueError("a token needs at least one scope")
    for s in out:
        if not _SCOPE_RE.match(s):
            raise ValueError(f"invalid scope name {s!r}")
    return out


_SELECT_INFO = """
    SELECT t.id, t.name, t.prefix, t.scopes, t.limit_per_month, t.created_at, t.revoked_at,
           COALESCE(u.count, 0) AS used
    FROM tokens t LEFT JOIN token_usage u ON u.token_id = t.id AND u.period = ?
"""


class TokenStore:
    """Tokens and quotas in a catalog (or on one connection to it: the server's writer and
    readers hand theirs in; see auth/usage.py for how the server counts requests)."""

    def __init__(self, catalog: Catalog | Connection):
        self._conn = catalog.conn if isinstance(catalog, Catalog) else catalog

    @staticmethod
    def _info(row: Row) -> TokenInfo:
        return TokenInfo(
            id=int(row[0]),
            name=str(row[1]),
            prefix=str(row[2]),
            scopes=frozenset(s for s in str(row[3]).split(",") if s),
            limit_per_month=None if row[4] is None else int(row[4]),
            created_at=float(row[5]),
            revoked_at=None if row[6] is None else float(row[6]),
            used_this_month=int(row[7]),
        )

    def create(
        self,
        name: str,
        *,
        limit_per_month: int | None = None,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        value: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """Make a token; returns the plain token (shown only now) and its stored record.

        ``value`` imports a token chosen elsewhere (e.g. the one existing AudD clients already
        use); it must be at least 8 characters.
        """
        name = name.strip()
        if not name:
            raise ValueError("a token needs a name")
        if limit_per_month is not None and limit_per_month < 0:
            raise ValueError("limit_per_month must be >= 0 (or None for no limit)")
        scope_set = _check_scopes(scopes)
        if value is not None:
            token = value.strip()
            if len(token) < MIN_IMPORTED_CHARS or len(token) > 512:
                hint = " (AudD's demo token `test` is a server option: serve --demo-token)" if token == "test" else ""
                raise ValueError(f"an imported token needs {MIN_IMPORTED_CHARS} to 512 characters{hint}")
        else:
            token = secrets.token_urlsafe(TOKEN_BYTES)
            while token.startswith("-"):  # a prefix like "-x3Fq9" would read as an option on a CLI
                token = secrets.token_urlsafe(TOKEN_BYTES)
        if self._conn.execute("SELECT 1 FROM tokens WHERE token_hash=?", (hash_token(token),)).fetchone():
            raise ValueError("this token already exists")
        try:
            cur = self._conn.execute(
                "INSERT INTO tokens(name, token_hash, prefix, scopes, limit_per_month, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    name,
                    hash_token(token),
                    token[:PREFIX_CHARS],
                    ",".join(sorted(scope_set)),
                    limit_per_month,
                    time.time(),
                ),
            )
        except sqlite3.IntegrityError:
            # Another node imported the same value since the check (token_hash is unique): the
            # caller's transaction, if any, is void now (PostgreSQL aborted it); nothing goes on in it.
            raise ValueError("this token already exists") from None
        info = self.get(int(cur.fetchone()[0]))
        assert info is not None
        return token, info

    def get(self, token_id: int, *, now: datetime | None = None) -> TokenInfo | None:
        """The record of a token by id (revoked ones included), with this month's usage."""
        row = self._conn.execute(f"{_SELECT_INFO} WHERE t.id = ?", (month_period(now), token_id)).fetchone()
        return None if row is None else self._info(row)

    def authenticate(self, token: str, *, now: datetime | None = None) -> TokenInfo | None:
        """The active token matching ``token``, or None (unknown, revoked, or malformed).

        The lookup is by hash through the unique index, so nothing compares the secret itself
        byte by byte and response timing says nothing about how much of a guess was right.
        """
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        try:
            digest = hash_token(token)
        except UnicodeEncodeError:  # lone surrogates from a badly decoded request
            return None
        row = self._conn.execute(
            f"{_SELECT_INFO} WHERE t.token_hash = ? AND t.revoked_at IS NULL",
            (month_period(now), digest),
        ).fetchone()
        return None if row is None else self._info(row)

    def consume(self, info: TokenInfo, n: int = 1, *, now: datetime | None = None) -> bool:
        """Count ``n`` requests against the token's month; False (and nothing counted) when that
        would go over its limit or the token has been revoked meanwhile.

        The limit and revocation are read from the catalog, not from ``info``, and checked in the
        same UPSERT that increments (the SELECT yields no row for a revoked token or n > limit; the
        DO UPDATE's WHERE checks the running count), so the limit holds across processes without
        an explicit transaction, and also inside a caller's transaction.
        """
        return self.consume_id(info.id, month_period(now), n)

    def consume_id(self, token_id: int, period: str, n: int = 1) -> bool:
        """``consume`` by token id for the usage ``period`` ('YYYY-MM')."""
        if n < 1:
            raise ValueError("n must be >= 1")
        cur = self._conn.execute(
            """
            INSERT INTO token_usage(token_id, period, count)
            SELECT id, ?, ? FROM tokens
            WHERE id = ? AND revoked_at IS NULL AND (limit_per_month IS NULL OR ? <= limit_per_month)
            ON CONFLICT(token_id, period) DO UPDATE SET count = token_usage.count + excluded.count
            WHERE (SELECT limit_per_month IS NULL OR token_usage.count + excluded.count <= limit_per_month
                   FROM tokens WHERE id = token_usage.token_id)
            """,
            (period, n, token_id, n),
        )
        return cur.rowcount == 1

    def quota(self, token_id: int, *, now: datetime | None = None) -> tuple[int | None, bool, int] | None:
        """A token's limit, whether it is revoked, and its usage this month as stored (None when
        no such token): what ``consume`` checks, read without writing."""
        row = self._conn.execute(
            "SELECT t.limit_per_month, t.revoked_at IS NOT NULL, COALESCE(u.count, 0) FROM tokens t"
            " LEFT JOIN token_usage u ON u.token_id = t.id AND u.period = ? WHERE t.id = ?",
            (month_period(now), token_id),
        ).fetchone()
        return None if row is None else (None if row[0] is None else int(row[0]), bool(row[1]), int(row[2]))

    def anonymous_used(self, client: str, day: str) -> int:
        """Requests counted for ``client`` on the UTC ``day`` ('YYYY-MM-DD')."""
        row = self._conn.execute("SELECT count FROM anonymous_usage WHERE client=? AND day=?", (client, day)).fetchone()
        return 0 if row is None else int(row[0])

    def consume_anonymous(self, client: str, per_day: int, *, now: datetime | None = None, n: int = 1) -> bool:
        """Count ``n`` requests without a token from ``client`` (its address) for the UTC day;
        False (and nothing counted) when that would pass ``per_day`` requests."""
        return self.consume_anonymous_on(client, utc_day(now), per_day, n)

    def consume_anonymous_on(self, client: str, day: str, per_day: int, n: int = 1) -> bool:
        """``consume_anonymous`` for a given UTC ``day`` ('YYYY-MM-DD')."""
        if n < 1:
            raise ValueError("n must be >= 1")
        cur = self._conn.execute(
            """
            INSERT INTO anonymous_usage(client, day, count) SELECT ?, ?, ? WHERE ? <= ?
            ON CONFLICT(client, day) DO UPDATE SET count = anonymous_usage.count + excluded.count
            WHERE anonymous_usage.count + excluded.count <= ?
            """,
            (client, day, n, n, per_day, per_day),
        )
        return cur.rowcount == 1

    def prune_anonymous(self, *, now: datetime | None = None, keep_days: int = 2) -> int:
        """Forget anonymous counters of days older than ``keep_days`` days; returns rows deleted."""
        cutoff = utc_day(_utc(now) - timedelta(days=keep_days))
        return self._conn.execute("DELETE FROM anonymous_usage WHERE day < ?", (cutoff,)).rowcount

    def revoke(self, token_id_or_prefix: str | int) -> bool:
        """Revoke a token by id or by its listed prefix; False when no active token matches.

        Raises ValueError when a prefix matches several active tokens.
        """
        key = str(token_id_or_prefix).strip()
        if not key:
            return False
        now = time.time()
        if key.isdigit():
            row = self._conn.execute("SELECT revoked_at FROM tokens WHERE id = ?", (int(key),)).fetchone()
            if row is not None:
                cur = self._conn.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, int(key))
                )
                return cur.rowcount == 1
        ids = [
            int(r[0])
            for r in self._conn.execute("SELECT id FROM tokens WHERE prefix = ? AND revoked_at IS NULL", (key,))
        ]
        if len(ids) > 1:
            raise ValueError(f"prefix {key!r} matches {len(ids)} tokens: revoke by id instead")
        if not ids:
            return False
        cur = self._conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, ids[0]))
        return cur.rowcount == 1

    def list(self, *, now: datetime | None = None) -> builtins.list[TokenInfo]:
        """Every token, revoked ones included, in creation order, with this month's usage."""
        rows = self._conn.execute(f"{_SELECT_INFO} ORDER BY t.id", (month_period(now),)).fetchall()
        return [self._info(r) for r in rows]
