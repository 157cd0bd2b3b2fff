"""The catalog's SQL connection: SQLite (the embedded store) or PostgreSQL (``SOUNDMARK_CATALOG_URL``).

Every catalog module writes its SQL once, in the dialect both engines accept (``?`` placeholders,
``INSERT ... ON CONFLICT``, ``RETURNING``, ``COALESCE``); the few statements that must differ ask
``dialect(conn)``. ``PgConnection`` makes a psycopg 3 connection look like ``sqlite3``'s to those
modules, which is why this adapter is written here rather than taken from a library (psycopg speaks
``%s``, SQLAlchemy would be a second data layer over the whole catalog):

- ``execute(sql, params)`` with ``?`` placeholders returns a cursor (``fetchone``, ``fetchall``,
  iteration, ``rowcount``); rows are read by position or by column name, like ``sqlite3.Row``;
- transactions are the statements the SQLite code already sends: ``BEGIN IMMEDIATE`` (SQLite's one
  writer at a time) becomes ``BEGIN`` plus a transaction-scoped advisory lock, so every write
  transaction of every node is serialised exactly as SQLite serialises them — they are short (the
  index data is written before them), and code that reads then writes (ids, counters, leases) stays
  correct across nodes; a plain ``BEGIN`` (a consistent multi-statement read) becomes a REPEATABLE
  READ transaction, SQLite's snapshot semantics;
- errors are raised as the DB-API classes of the ``sqlite3`` module (``IntegrityError``,
  ``OperationalError``, ``DatabaseError``): the one error vocabulary every caller already handles;
- ``numeric`` results (PostgreSQL's ``SUM`` of integers) load as int, or float when fractional.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg.pq
from psycopg.adapt import Loader

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
# The advisory lock key of the catalog's write transactions ("soundmrk" as a 64-bit integer).
WRITE_LOCK_KEY = 0x736F756E646D726B
# A session-level advisory lock held while a node applies the schema's migrations ("soundmig").
MIGRATION_LOCK_KEY = 0x736F756E646D6967
_DEFAULT_SCHEMA = "public"


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What catalog code needs of a connection (``sqlite3.Connection`` is one)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...
    def close(self) -> None: ...


def dialect(conn: Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return POSTGRESQL if isinstance(conn, PgConnection) else SQLITE


@dataclass(frozen=True)
class PgLocation:
    """A ``postgresql://`` catalog URL: what psycopg connects to, and the schema the store's tables
    live in (``?schema=NAME``, soundmark's own parameter; default ``public``), so that one
    PostgreSQL database can hold several catalogs (tests, staging)."""

    dsn: str
    schema: str

    @property
    def display(self) -> str:
        """The URL without its password (for messages and logs)."""
        parts = urlsplit(self.dsn)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{user}{host}{port}{parts.path}?schema={self.schema}"


def parse_pg_url(url: str) -> PgLocation:
    """Split a ``postgresql://`` (or ``postgres://``) URL into its DSN and schema; ValueError if malformed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"a catalog URL starts with postgresql://, not {url.split(':', 1)[0]!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = _DEFAULT_SCHEMA
    rest = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            rest.append((key, value))
    if not schema.replace("_", "a").isalnum() or not schema[0].isalpha() or len(schema) > 63:
        raise ValueError(f"a catalog schema name is letters, digits and _ (at most 63), not {schema!r}")
    dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return PgLocation(dsn, schema.lower())


@functools.lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (and a literal ``%`` as ``%%``), outside quoted text."""
    out: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class Row(tuple[Any, ...]):
    """A result row read by position or by column name (what ``sqlite3.Row`` offers)."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


class PgCursor:
    """A finished statement's rows (fetched at once: catalog statements return bounded results)."""

    def __init__(self, rows: list[Row], rowcount: int):
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Row]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class _NumericLoader(Loader):
    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


def _translate_error(exc: Exception) -> sqlite3.Error:
    text = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, psycopg.errors.IntegrityError):
        return sqlite3.IntegrityError(text)
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
        return sqlite3.OperationalError(text)
    if isinstance(exc, psycopg.errors.ProgrammingError | psycopg.errors.SyntaxError):
        return sqlite3.ProgrammingError(text)
    return sqlite3.DatabaseError(text)


class PgConnection:
    """One PostgreSQL connection with the surface of ``sqlite3.Connection`` used by the catalog."""

    def __init__(self, url: str, *, readonly: bool = False, connect_timeout: float = 10.0):
        try:
            self.location = parse_pg_url(url)
        except ValueError as exc:
            raise sqlite3.OperationalError(str(exc)) from exc
        self.readonly = readonly
        try:
            self._conn = psycopg.connect(self.location.dsn, autocommit=True, connect_timeout=int(connect_timeout))
        except psycopg.Error as exc:
            raise sqlite3.OperationalError(f"cannot connect to {self.location.display}: {exc}") from exc
        self._conn.adapters.register_loader("numeric", _NumericLoader)
        self._lock = threading.RLock()  # one statement at a time, like a sqlite3 connection
        self._create_schema()
        self._conn.execute(f'SET search_path TO "{self.location.schema}"')

    def _create_schema(self) -> None:
        """``CREATE SCHEMA IF NOT EXISTS`` is not safe against itself: two nodes starting at once
        can both miss the schema and one fails on the catalog's unique name; that one is fine."""
        name = self.location.schema
        if self._conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone():
            return
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
            self._conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Any = (), /) -> PgCursor:
        head = sql.lstrip()[:20].upper()
        with self._lock:
            try:
                if head.startswith("BEGIN IMMEDIATE"):
                    self._conn.execute("BEGIN")
                    self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK_KEY,))
                    return PgCursor([], -1)
                if head.rstrip(";") == "BEGIN":
                    level = "READ ONLY" if self.readonly else "READ WRITE"
                    self._conn.execute(f"BEGIN ISOLATION LEVEL REPEATABLE READ {level}")
                    return PgCursor([], -1)
                params = tuple(parameters) if parameters else None
                cur = self._conn.execute(to_pyformat(sql) if params else sql, params)
                return PgCursor(_rows(cur), cur.rowcount)
            except psycopg.Error as exc:
                raise _translate_error(exc) from exc

    def executemany(self, sql: str, parameters: Any, /) -> PgCursor:
        rows = [tuple(p) for p in parameters]
        with self._lock:
            if not rows:
                return PgCursor([], 0)
            try:
                with self._conn.cursor() as cur:
                    cur.executemany(to_pyformat(sql), rows)
                    return PgCursor([], cur.rowcount)
            except psycopg.Error as exc:
                raise _translate_error(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _rows(cur: Any) -> list[Row]:
    if cur.description is None:
        return []
    names = {col.name: i for i, col in enumerate(cur.description)}
    return [Row(values, names) for values in cur.fetchall()]
