"""Streams, callback URLs and the durable event queue, kept in the store's catalog (SQLite).

It reaches SQLite through a ``Database`` (catalog/writer.py): in the server its writes go through
the process's one writer thread and its reads through the read pool; the CLI and tests get a
connection of their own. Each method blocks (for threads, the CLI and tests); what the event loop
calls (the monitor, callback delivery, longpoll, the stream methods) has an awaited twin named
``a<method>``: through the server's writer and read pool it holds no thread of the default pool
while the writer waits for a lock that another process (``soundmark add``) holds.

Event stamps (``created_ms``) are strictly increasing in commit order, across every process and
node over the catalog, which golongpoll's ``since_time`` semantics need: an event's stamp is at
least the newest stored stamp + 2, read inside its write transaction (write transactions are
serialised: SQLite's one writer, the PostgreSQL adapter's write lock), and a poll that finds no
event answers at most the newest stamp it saw + 1 (or the request's own ``since``), so an event
still being written — here or on another node — always lands after the stamp a poll answered,
whatever the nodes' clocks say. In one process the stamp lock also orders a poll after an event
written meanwhile. On PostgreSQL an event's transaction also sends ``NOTIFY soundmark_events``
(payload: its category), which wakes longpoll on every node (event_watch.py).

Callback delivery claims events (``claim_due``: ``owner`` = the node, ``next_attempt_at`` = the
end of the claim) in one write transaction before POSTing them, so two nodes never POST the same
event; a claim of a node that died runs out and the event is due again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soundmark.catalog.sql import POSTGRESQL, Connection, Row, dialect
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import Database, LocalDatabase, read_async, write_async

PENDING, DELIVERED, SKIPPED, EXPIRED = "pending", "delivered", "skipped", "expired"
EVENTS_CHANNEL = "soundmark_events"  # PostgreSQL NOTIFY channel of new stream events (payload: category)
STAMP_GAP = 2  # an event's stamp is at least the newest stored + 2; a fresh poll stamp at most newest + 1
RECENT_RESULTS = 40  # results kept per stream by AudD's lastSong service (historyCap)


def token_md5(token: str) -> str:
    return hashlib.md5(token.encode("utf-8")).hexdigest()


def longpoll_category(md5_of_token: str, radio_id: int) -> str:
    """AudD's longpoll category: ``md5(md5(api_token) + str(radio_id))[:9]``."""
    return hashlib.md5((md5_of_token + str(radio_id)).encode("utf-8")).hexdigest()[:9]


@dataclass(frozen=True)
class StreamRow:
    id: int
    token_id: int
    radio_id: int
    url: str
    callbacks: str | None
    category: str
    running: bool
    status_code: int | None
    updated_at: float


@dataclass(frozen=True)
class Event:
    id: int
    token_id: int
    radio_id: int
    category: str
    kind: str
    payload: dict[str, object]
    created_ms: int
    attempts: int


class StreamStore:
    def __init__(self, root: str | Path, db: Database | None = None):
        self._own: LocalDatabase | None = None
        if db is None:  # a connection of its own (it applies pending migrations)
            db = self._own = LocalDatabase(Path(root))
        self._db: Database = db
        self._lock = threading.Lock()  # the stamp lock
        row = self._db.read(lambda c: c.conn.execute("SELECT MAX(created_ms) FROM stream_events").fetchone())
        self._last_ms = int(row[0] or 0)

    def close(self) -> None:
        if self._own is not None:
            self._own.close()

    def _write(self, sql: str, args: tuple[object, ...]) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        return self._db.write(lambda c: c.execute(sql, args).rowcount)

    async def _awrite(self, sql: str, args: tuple[object, ...]) -> int:
        changed: int = await write_async(self._db, lambda c: c.execute(sql, args).rowcount)
        return changed

    def _one(self, sql: str, args: tuple[object, ...]) -> Row | None:
        row: Row | None = self._db.read(_fetch_one(sql, args))
        return row

    async def _aone(self, sql: str, args: tuple[object, ...]) -> Row | None:
        row: Row | None = await read_async(self._db, _fetch_one(sql, args))
        return row

    # --- stamps -------------------------------------------------------------------------------
    def stamp(self) -> int:
        """A millisecond stamp later than every event written so far (and every stamp handed out)."""
        with self._lock:
            return self._next_ms()

    def _next_ms(self, floor: int = 0) -> int:
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1, floor)
        return self._last_ms

    # --- accounts -----------------------------------------------------------------------------
    def set_callback_url(self, token_id: int, md5_of_token: str, url: str | None) -> None:
        self._write(_SET_CALLBACK_URL, (token_id, md5_of_token, url, time.time()))

    async def aset_callback_url(self, token_id: int, md5_of_token: str, url: str | None) -> None:
        await self._awrite(_SET_CALLBACK_URL, (token_id, md5_of_token, url, time.time()))

    def callback_url(self, token_id: int) -> str | None:
        return _text(self._one(_CALLBACK_URL, (token_id,)))

    async def acallback_url(self, token_id: int) -> str | None:
        return _text(await self._aone(_CALLBACK_URL, (token_id,)))

    # --- streams ------------------------------------------------------------------------------
    def add_stream(self, token_id: int, md5_of_token: str, radio_id: int, url: str, callbacks: str | None) -> None:
        """Add (or replace) the stream ``radio_id`` of a token."""
        self._db.write(_add_stream_write(token_id, md5_of_token, radio_id, url, callbacks))

    async def aadd_stream(
        self, token_id: int, md5_of_token: str, radio_id: int, url: str, callbacks: str | None
    ) -> None:
        await write_async(self._db, _add_stream_write(token_id, md5_of_token, radio_id, url, callbacks))

    def count_streams(self, token_id: int) -> int:
        return _count(self._one(_COUNT_STREAMS, (token_id,)))

    async def acount_streams(self, token_id: int) -> int:
        return _count(await self._aone(_COUNT_STREAMS, (token_id,)))

    def has_stream(self, token_id: int, radio_id: int) -> bool:
        return self._one(_HAS_STREAM, (token_id, radio_id)) is not None

    async def ahas_stream(self, token_id: int, radio_id: int) -> bool:
        return await self._aone(_HAS_STREAM, (token_id, radio_id)) is not None

    def set_stream_url(self, token_id: int, radio_id: int, url: str) -> bool:
        return self._write(_SET_STREAM_URL, (url, time.time(), token_id, radio_id)) > 0

    async def aset_stream_url(self, token_id: int, radio_id: int, url: str) -> bool:
        return await self._awrite(_SET_STREAM_URL, (url, time.time(), token_id, radio_id)) > 0

    def delete_stream(self, token_id: int, radio_id: int) -> bool:
        return self._write(_DELETE_STREAM, (token_id, radio_id)) > 0

    async def adelete_stream(self, token_id: int, radio_id: int) -> bool:
        return await self._awrite(_DELETE_STREAM, (token_id, radio_id)) > 0

    def streams(self, token_id: int | None = None, *, active_only: bool = False) -> list[StreamRow]:
        """Streams of one token (or all); ``active_only`` leaves out those of revoked or deleted tokens."""
        return self._db.read(_streams_read(token_id, active_only))

    async def astreams(self, token_id: int | None = None, *, active_only: bool = False) -> list[StreamRow]:
        rows: list[StreamRow] = await read_async(self._db, _streams_read(token_id, active_only))
        return rows

    def set_status(self, stream_id: int, running: bool, code: int | None, message: str | None) -> None:
        self._write(_SET_STATUS, (int(running), code, message, stream_id))

    async def aset_status(self, stream_id: int, running: bool, code: int | None, message: str | None) -> None:
        await self._awrite(_SET_STATUS, (int(running), code, message, stream_id))

    # --- events -------------------------------------------------------------------------------
    def add_event(self, token_id: int, radio_id: int, category: str, kind: str, payload: dict[str, object]) -> int:
        """Queue an event; it is pending delivery when the account has a callback URL. Returns its stamp."""
        stamp: int = self._db.write(self._event_write(token_id, radio_id, category, kind, payload), guard=self._lock)
        return stamp

    async def aadd_event(
        self, token_id: int, radio_id: int, category: str, kind: str, payload: dict[str, object]
    ) -> int:
        """``add_event`` from the event loop."""
        write = self._event_write(token_id, radio_id, category, kind, payload)
        stamp: int = await write_async(self._db, write, guard=self._lock)
        return stamp

    def _event_write(
        self, token_id: int, radio_id: int, category: str, kind: str, payload: dict[str, object]
    ) -> Callable[[Connection], int]:
        body = json.dumps(payload, ensure_ascii=False)

        def write(c: Connection) -> int:  # runs under the stamp lock, up to its COMMIT
            row = c.execute("SELECT callback_url FROM stream_accounts WHERE token_id=?", (token_id,)).fetchone()
            state = PENDING if row is not None and row[0] else SKIPPED
            ms = self._next_ms(_newest_stamp(c) + STAMP_GAP)  # after every event of every node
            c.execute(
                "INSERT INTO stream_events(token_id, radio_id, category, kind, payload, created_ms, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, radio_id, category, kind, body, ms, state),
            )
            if dialect(c) == POSTGRESQL:  # delivered to the listeners when this transaction commits
                c.execute("SELECT pg_notify(?, ?)", (EVENTS_CHANNEL, category))
            return ms

        return write

    def poll(self, category: str, since_ms: int) -> tuple[Event | None, int]:
        """The first event of ``category`` stamped after ``since_ms`` (golongpoll answers one per
        request) and its stamp; without one, a fresh stamp that every later event will exceed."""
        return self._db.read(self._poll_read(category, since_ms))

    async def apoll(self, category: str, since_ms: int) -> tuple[Event | None, int]:
        found: tuple[Event | None, int] = await read_async(self._db, self._poll_read(category, since_ms))
        return found

    def _poll_read(self, category: str, since_ms: int) -> Callable[[Catalog], tuple[Event | None, int]]:
        def read(c: Catalog) -> tuple[Event | None, int]:
            with self._lock:  # taken inside the read: the same order as a write's guard
                # The newest stamp first: an event committed between the two statements is then
                # either found or stamped after the answer (see the module docstring).
                newest = _newest_stamp(c.conn)
                row = c.conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM stream_events WHERE category=? AND created_ms>? "
                    "ORDER BY created_ms LIMIT 1",
                    (category, since_ms),
                ).fetchone()
                if row is None:
                    fresh = max(since_ms, newest + 1)
                    # This process's next event comes after it (a request's default ``since`` is
                    # now: an event of the same millisecond must not be lost), unless a client
                    # sent a ``since_time`` from the future: that moves no stamp.
                    self._last_ms = max(self._last_ms, min(fresh, int(time.time() * 1000)))
                    return None, fresh
            event = _event(row)
            return event, event.created_ms

        return read

    def recent_results(self, category: str, limit: int = RECENT_RESULTS) -> list[dict[str, object]] | None:
        """The last ``limit`` songs reported for the stream of ``category``, oldest first, each
        the best result of its callback merged with ``radio_id``, ``timestamp`` and ``play_length``
        (the elements of AudD's ``lastSong`` history); None when no stream has this category."""
        return _history(self._db.read(_recent_read(category, limit)))

    async def arecent_results(self, category: str, limit: int = RECENT_RESULTS) -> list[dict[str, object]] | None:
        return _history(await read_async(self._db, _recent_read(category, limit)))

    async def alast_result(self, category: str) -> tuple[int, str] | None:
        """The track and ``timestamp`` (as written, in the callback time zone) of the newest result
        event of the stream of ``category`` — what a monitor taking the stream over must not report
        again (monitor.py); None without one, or when its song is no longer in the catalog."""
        row = await self._aone(_LAST_RESULT, (category,))
        return None if row is None or row[0] is None else (int(row[0]), str(row[1]))

    def due_events(self, now: float, limit: int = 100) -> list[Event]:
        return [_event(r) for r in self._db.read(_due_read(now, limit))]

    async def adue_events(self, now: float, limit: int = 100) -> list[Event]:
        return [_event(r) for r in await read_async(self._db, _due_read(now, limit))]

    def claim_due(self, owner: str, now: float, until: float, limit: int = 100) -> list[Event]:
        """Claim the pending events due at ``now`` for ``owner`` until ``until``, oldest first:
        one write transaction (serialised with every other node's), so no two nodes hold the same
        event. An event waits while an older pending event of its account is not due (deferred
        after a failure, or claimed by a node): each account's events stay in order, and only one
        node delivers an account's events at a time."""
        return _sorted_events(self._db.write(_claim_write(owner, now, until, limit)))

    async def aclaim_due(self, owner: str, now: float, until: float, limit: int = 100) -> list[Event]:
        return _sorted_events(await write_async(self._db, _claim_write(owner, now, until, limit)))

    def release_claims(self, owner: str, until: float, now: float) -> int:
        """Hand back ``owner``'s claims that end at ``until`` and were not delivered: due at ``now``."""
        return self._write(_RELEASE, (now, owner, PENDING, until))

    async def arelease_claims(self, owner: str, until: float, now: float) -> int:
        return await self._awrite(_RELEASE, (now, owner, PENDING, until))

    def next_due_at(self) -> float | None:
        return _real(self._one(_NEXT_DUE, (PENDING,)))

    async def anext_due_at(self) -> float | None:
        return _real(await self._aone(_NEXT_DUE, (PENDING,)))

    def mark(self, event_id: int, state: str, error: str | None = None) -> None:
        self._write(_MARK, (state, error, event_id))

    async def amark(self, event_id: int, state: str, error: str | None = None) -> None:
        await self._awrite(_MARK, (state, error, event_id))

    def retry_later(self, event_id: int, token_id: int, at: float, error: str) -> None:
        """The delivery of ``event_id`` failed: try it again at ``at``, and hold back every later
        pending event of the same account until then (they stay in order)."""
        self._db.write(_retry_write(event_id, token_id, at, error))

    async def aretry_later(self, event_id: int, token_id: int, at: float, error: str) -> None:
        await write_async(self._db, _retry_write(event_id, token_id, at, error))

    def pending_count(self) -> int:
        return _count(self._one("SELECT COUNT(*) FROM stream_events WHERE state=?", (PENDING,)))

    def prune(self, max_events: int, max_age_s: float) -> tuple[int, int]:
        """Expire pending events older than ``max_age_s``, then keep at most ``max_events`` rows,
        deleting finished events (oldest first) before any pending one. Returns (expired, deleted)."""
        result: tuple[int, int] = self._db.write(_prune_write(max_events, max_age_s))
        return result

    async def aprune(self, max_events: int, max_age_s: float) -> tuple[int, int]:
        result: tuple[int, int] = await write_async(self._db, _prune_write(max_events, max_age_s))
        return result


# --- the statements (one function each, run by the blocking and the awaited methods alike) ------
def _fetch_one(sql: str, args: tuple[object, ...]) -> Callable[[Catalog], Row | None]:
    def read(c: Catalog) -> Row | None:
        row: Row | None = c.conn.execute(sql, args).fetchone()
        return row

    return read


def _newest_stamp(conn: Connection) -> int:
    """The stamp of the newest event (by id: the primary key, one index lookup), 0 without one."""
    row = conn.execute("SELECT created_ms FROM stream_events ORDER BY id DESC LIMIT 1").fetchone()
    return 0 if row is None else int(row[0])


def _text(row: Row | None) -> str | None:
    return None if row is None or not row[0] else str(row[0])


def _count(row: Row | None) -> int:
    return int(row[0]) if row is not None else 0


def _real(row: Row | None) -> float | None:
    return None if row is None or row[0] is None else float(row[0])


def _add_stream_write(
    token_id: int, md5_of_token: str, radio_id: int, url: str, callbacks: str | None
) -> Callable[[Connection], None]:
    now = time.time()
    category = longpoll_category(md5_of_token, radio_id)

    def write(c: Connection) -> None:
        c.execute(
            "INSERT INTO stream_accounts(token_id, token_md5, callback_url, updated_at) VALUES (?, ?, NULL, ?) "
            "ON CONFLICT(token_id) DO UPDATE SET token_md5=excluded.token_md5",
            (token_id, md5_of_token, now),
        )
        c.execute(
            "INSERT INTO streams(token_id, radio_id, url, callbacks, category, running, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT(token_id, radio_id) DO UPDATE SET url=excluded.url, "
            "callbacks=excluded.callbacks, category=excluded.category, running=0, status_code=NULL, "
            "status_message=NULL, updated_at=excluded.updated_at",
            (token_id, radio_id, url, callbacks, category, now, now),
        )

    return write


def _streams_read(token_id: int | None, active_only: bool) -> Callable[[Catalog], list[StreamRow]]:
    sql = (
        "SELECT s.id, s.token_id, s.radio_id, s.url, s.callbacks, s.category, s.running, s.status_code, "
        "s.updated_at FROM streams s"
    )
    args: list[object] = []
    where = []
    if active_only:
        sql += " JOIN tokens t ON t.id = s.token_id"
        where.append("t.revoked_at IS NULL")
    if token_id is not None:
        where.append("s.token_id=?")
        args.append(token_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY s.token_id, s.radio_id"

    def read(c: Catalog) -> list[StreamRow]:
        return [_stream_row(r) for r in c.conn.execute(sql, args).fetchall()]

    return read


def _recent_read(category: str, limit: int) -> Callable[[Catalog], list[Row] | None]:
    def read(c: Catalog) -> list[Row] | None:
        known = c.conn.execute(
            "SELECT 1 FROM streams WHERE category=? UNION ALL SELECT 1 FROM stream_events WHERE category=? LIMIT 1",
            (category, category),
        ).fetchone()
        if known is None:
            return None
        rows: list[Row] = c.conn.execute(
            "SELECT payload FROM stream_events WHERE category=? AND kind='result' ORDER BY created_ms DESC LIMIT ?",
            (category, limit),
        ).fetchall()
        return rows

    return read


def _history(rows: list[Row] | None) -> list[dict[str, object]] | None:
    """The ``lastSong`` elements of the newest-first result payloads ``rows``, oldest first."""
    if rows is None:
        return None
    out: list[dict[str, object]] = []
    for (payload,) in reversed(rows):
        result = json.loads(str(payload)).get("result") or {}
        songs = result.get("results") or []
        if not songs:
            continue
        element: dict[str, object] = {"radio_id": result.get("radio_id"), "timestamp": result.get("timestamp")}
        if "play_length" in result:
            element["play_length"] = result["play_length"]
        element.update(songs[0])
        out.append(element)
    return out


def _due_read(now: float, limit: int) -> Callable[[Catalog], list[Row]]:
    def read(c: Catalog) -> list[Row]:
        rows: list[Row] = c.conn.execute(
            f"SELECT {_EVENT_COLUMNS} FROM stream_events WHERE state=? AND next_attempt_at<=? ORDER BY id LIMIT ?",
            (PENDING, now, limit),
        ).fetchall()
        return rows

    return read


def _prune_write(max_events: int, max_age_s: float) -> Callable[[Connection], tuple[int, int]]:
    cutoff_ms = int((time.time() - max_age_s) * 1000)

    def write(c: Connection) -> tuple[int, int]:
        expired = c.execute(
            "UPDATE stream_events SET state=? WHERE state=? AND created_ms<?", (EXPIRED, PENDING, cutoff_ms)
        ).rowcount
        total = int(c.execute("SELECT COUNT(*) FROM stream_events").fetchone()[0])
        excess = total - max_events
        deleted = 0
        if excess > 0:
            deleted += c.execute(
                "DELETE FROM stream_events WHERE id IN (SELECT id FROM stream_events WHERE state!=? "
                "ORDER BY id LIMIT ?)",
                (PENDING, excess),
            ).rowcount
            if excess - deleted > 0:  # the receiver has been down long enough to fill the queue
                deleted += c.execute(
                    "DELETE FROM stream_events WHERE id IN (SELECT id FROM stream_events ORDER BY id LIMIT ?)",
                    (excess - deleted,),
                ).rowcount
        return expired, deleted

    return write


def _retry_write(event_id: int, token_id: int, at: float, error: str) -> Callable[[Connection], None]:
    def write(c: Connection) -> None:
        c.execute(
            "UPDATE stream_events SET attempts=attempts+1, next_attempt_at=?, last_error=?, owner=NULL WHERE id=?",
            (at, error[:500], event_id),
        )
        # The account's later events wait for it; the claims on them (this node's: one node
        # delivers an account at a time, see claim_due) are handed back with the wait.
        c.execute(
            "UPDATE stream_events SET next_attempt_at=?, owner=NULL WHERE token_id=? AND state=? AND id>? "
            "AND (next_attempt_at<? OR owner IS NOT NULL)",
            (at, token_id, PENDING, event_id, at),
        )

    return write


def _claim_write(owner: str, now: float, until: float, limit: int) -> Callable[[Connection], list[Row]]:
    def write(c: Connection) -> list[Row]:
        rows: list[Row] = c.execute(
            "UPDATE stream_events SET owner=?, next_attempt_at=? WHERE id IN ("
            "SELECT e.id FROM stream_events e WHERE e.state=? AND e.next_attempt_at<=? AND NOT EXISTS ("
            "SELECT 1 FROM stream_events p WHERE p.state=? AND p.next_attempt_at>? AND p.token_id=e.token_id "
            f"AND p.id<e.id) ORDER BY e.id LIMIT ?) RETURNING {_EVENT_COLUMNS}",
            (owner, until, PENDING, now, PENDING, now, limit),
        ).fetchall()
        return rows

    return write


def _sorted_events(rows: list[Row]) -> list[Event]:
    return sorted((_event(r) for r in rows), key=lambda e: e.id)  # RETURNING keeps no order


_SET_CALLBACK_URL = (
    "INSERT INTO stream_accounts(token_id, token_md5, callback_url, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT(token_id) DO UPDATE SET token_md5=excluded.token_md5, "
    "callback_url=excluded.callback_url, updated_at=excluded.updated_at"
)
_CALLBACK_URL = "SELECT callback_url FROM stream_accounts WHERE token_id=?"
_COUNT_STREAMS = "SELECT COUNT(*) FROM streams WHERE token_id=?"
_HAS_STREAM = "SELECT 1 FROM streams WHERE token_id=? AND radio_id=?"
_SET_STREAM_URL = (
    "UPDATE streams SET url=?, running=0, status_code=NULL, status_message=NULL, updated_at=? "
    "WHERE token_id=? AND radio_id=?"
)
_DELETE_STREAM = "DELETE FROM streams WHERE token_id=? AND radio_id=?"
_RELEASE = "UPDATE stream_events SET owner=NULL, next_attempt_at=? WHERE owner=? AND state=? AND next_attempt_at=?"
_LAST_RESULT = (
    "SELECT p.track_id, p.heard_at FROM stream_events e JOIN plays p ON p.event_id = e.id "
    "WHERE e.category=? AND e.kind='result' ORDER BY e.created_ms DESC LIMIT 1"
)
_NEXT_DUE = "SELECT MIN(next_attempt_at) FROM stream_events WHERE state=?"
_SET_STATUS = "UPDATE streams SET running=?, status_code=?, status_message=? WHERE id=?"
_MARK = "UPDATE stream_events SET state=?, attempts=attempts+1, last_error=? WHERE id=?"
_EVENT_COLUMNS = "id, token_id, radio_id, category, kind, payload, created_ms, attempts"


def _event(r: Row) -> Event:
    return Event(int(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), json.loads(str(r[5])), int(r[6]), int(r[7]))


def _stream_row(r: Row) -> StreamRow:
    code = None if r[7] is None else int(r[7])
    return StreamRow(int(r[0]), int(r[1]), int(r[2]), str(r[3]), r[4], str(r[5]), bool(r[6]), code, float(r[8]))
