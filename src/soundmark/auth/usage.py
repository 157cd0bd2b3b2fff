"""Quota counting in the server without waiting for a write lock.

SQLite (one store on one machine): a request is admitted on a read: the token's (or client's)
stored count plus the requests this process admitted that are not committed yet must stay within
the limit. Admitted requests are counted in memory at once and written in the background by the
database writer, many per transaction, with the same conditional UPSERTs as
``TokenStore.consume`` (so the stored counts never pass a limit). The read-and-reserve and the
writer's COMMIT-and-release take one lock, so every admission sees each request exactly once
(stored or pending): within one server process a limit is exact. Across processes sharing a
store, a request another process admitted in the same instant may be counted here a moment late:
at most the requests in flight there can pass a limit, and a batch the database refuses is logged.

PostgreSQL (a catalog several API nodes share): a request is admitted by the conditional UPSERT
itself (``TokenStore.consume_id`` / ``consume_anonymous_on``), one statement in autocommit on the
calling read thread's connection. PostgreSQL runs an ``INSERT ... ON CONFLICT DO UPDATE ...
WHERE`` atomically against the latest committed count (a concurrent one waits for the row), so a
limit is exact across every node, and one statement needs neither a transaction nor the catalog's
write lock (which would serialise every request of every node behind the other writes). Nothing
is pending in memory there: what a node admitted is stored when it answers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from soundmark.auth.tokens import TokenInfo, TokenStore, month_period, utc_day
from soundmark.catalog.sql import POSTGRESQL, Connection, dialect
from soundmark.catalog.sqlite import Catalog

log = logging.getLogger("soundmark.auth")


@dataclass(frozen=True)
class TokenKey:
    token_id: int
    period: str  # 'YYYY-MM'


@dataclass(frozen=True)
class ClientKey:
    client: str
    day: str  # 'YYYY-MM-DD'
    per_day: int


UsageKey = TokenKey | ClientKey
# Queues a write function for the database writer: fn(conn) in one transaction, under the guard.
Schedule = Callable[[Callable[[Connection], None], threading.Lock], None]


class UsageCounter:
    """Admits requests against their quotas and counts them: on SQLite with a read and a write in
    the background, on PostgreSQL with one atomic statement (see the module's docstring).

    ``authenticate``, ``consume`` and ``consume_anonymous`` take the read pool's catalog (run them
    on a read thread, never on the event loop: on PostgreSQL ``consume`` writes through that
    connection, outside any transaction); ``schedule`` hands a write function to the writer.
    """

    def __init__(self, schedule: Schedule):
        self._schedule = schedule
        self._lock = threading.Lock()
        self._pending: dict[UsageKey, int] = {}
        self._scheduled = False
        self._pruned_day = ""  # the UTC day this process last forgot old anonymous counters on

    def pending(self) -> int:
        """Admitted requests not written yet (all keys)."""
        with self._lock:
            return sum(self._pending.values())

    # --- reads (admission) ----------------------------------------------------------------------
    def authenticate(self, catalog: Catalog, token: str, *, now: datetime | None = None) -> TokenInfo | None:
        """The active token ``token`` names, its usage including what is not written yet."""
        if _atomic(catalog):
            return TokenStore(catalog.conn).authenticate(token, now=now)
        with self._lock:
            info = TokenStore(catalog.conn).authenticate(token, now=now)
            if info is None:
                return None
            waiting = self._pending.get(TokenKey(info.id, month_period(now)), 0)
        return replace(info, used_this_month=info.used_this_month + waiting)

    def consume(self, catalog: Catalog, info: TokenInfo, *, now: datetime | None = None) -> bool:
        """Admit one request of the token ``info`` and count it; False (nothing counted) when it
        would pass the token's monthly limit or the token was revoked meanwhile."""
        if _atomic(catalog):
            return TokenStore(catalog.conn).consume(info, now=now)
        key = TokenKey(info.id, month_period(now))
        with self._lock:
            quota = TokenStore(catalog.conn).quota(info.id, now=now)
            if quota is None:
                return False
            limit, revoked, used = quota
            if revoked or (limit is not None and used + self._pending.get(key, 0) + 1 > limit):
                return False
            flush = self._reserve(key)
        self._queue_flush(flush)
        return True

    def consume_anonymous(self, catalog: Catalog, client: str, per_day: int, *, now: datetime | None = None) -> bool:
        """Admit one request without a token from ``client`` within ``per_day`` a UTC day."""
        atomic = _atomic(catalog)
        self._prune_on_a_new_day(catalog, atomic, now)
        if atomic:
            return TokenStore(catalog.conn).consume_anonymous(client, per_day, now=now)
        key = ClientKey(client, utc_day(now), per_day)
        with self._lock:
            used = TokenStore(catalog.conn).anonymous_used(client, key.day)
            if used + self._pending.get(key, 0) + 1 > per_day:
                return False
            flush = self._reserve(key)
        self._queue_flush(flush)
        return True

    def _prune_on_a_new_day(self, catalog: Catalog, atomic: bool, now: datetime | None) -> None:
        """On the first anonymous request of each UTC day: forget the counters of days past
        (a row per client and day would otherwise pile up for ever). On PostgreSQL one DELETE on
        this connection (outside any transaction, as the admission); on SQLite by the writer."""
        day = utc_day(now)
        with self._lock:
            if self._pruned_day == day:
                return
            self._pruned_day = day
        if atomic:
            TokenStore(catalog.conn).prune_anonymous(now=now)
        else:
            self._schedule(lambda conn: _prune(conn, now), threading.Lock())

    def _reserve(self, key: UsageKey) -> bool:
        """Count one admitted request (the lock is held); True when a flush must be queued."""
        self._pending[key] = self._pending.get(key, 0) + 1
        if self._scheduled:
            return False
        self._scheduled = True
        return True

    def _queue_flush(self, needed: bool) -> None:
        # Outside the lock: queueing may wait for room, and the writer takes the lock to flush.
        if needed:
            self._schedule(self._flush, self._lock)

    # --- writes (in the writer thread, inside its transaction, under the lock) -------------------
    def _flush(self, conn: Connection) -> None:
        """Write every pending count; runs under ``self._lock`` up to and including the COMMIT
        (the write lock is taken before), so counts move from pending to stored in one step as
        far as admissions can see, and nothing is admitted between the batch and the COMMIT."""
        batch = dict(self._pending)
        self._scheduled = False
        tokens = TokenStore(conn)
        refused = 0
        for key, n in batch.items():
            refused += n - _write(tokens, key, n)
        for key, n in batch.items():
            left = self._pending[key] - n
            if left:
                self._pending[key] = left
            else:
                del self._pending[key]
        if refused:
            log.warning("requests admitted past a limit counted by another process",
                        extra={"fields": {"requests": refused}})  # fmt: skip


def _atomic(catalog: Catalog) -> bool:
    """Whether requests are admitted by the UPSERT itself (PostgreSQL), not on a read.

    The statement must run outside a transaction: inside the reader's REPEATABLE READ READ ONLY
    one it could not write, and a conflicting count would abort the whole transaction."""
    if dialect(catalog.conn) != POSTGRESQL:
        return False
    if catalog.conn.in_transaction:
        raise RuntimeError("quota admission on PostgreSQL runs as its own statement, not inside a transaction")
    return True


def _prune(conn: Connection, now: datetime | None) -> None:
    gone = TokenStore(conn).prune_anonymous(now=now)
    if gone:
        log.info("old anonymous counters forgotten", extra={"fields": {"rows": gone}})


def _write(tokens: TokenStore, key: UsageKey, n: int) -> int:
    """Store ``n`` requests of ``key`` (as many as its limit lets through); returns how many."""

    def one(k: int) -> bool:
        if isinstance(key, TokenKey):
            return tokens.consume_id(key.token_id, key.period, k)
        return tokens.consume_anonymous_on(key.client, key.day, key.per_day, k)

    if one(n):
        return n
    stored = 0
    while stored < n and one(1):  # another process used part of the quota meanwhile
        stored += 1
    return stored
