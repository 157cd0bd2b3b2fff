"""Streams, callback URLs and the durable event queue, kept in the store's catalog (SQLite).

One ``StreamStore`` owns its own connection to the catalog, so it never contends with the
request path's connection; every method is synchronous and guarded by a lock (call it through
``asyncio.to_thread`` from the event loop). Event stamps (``created_ms``) are strictly increasing
across the process, which golongpoll's ``since_time`` semantics need.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from soundmark.catalog.sqlite import Catalog

PENDING, DELIVERED, SKIPPED, EXPIRED = "pending", "delivered", "skipped", "expired"
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
    def __init__(self, root: str | Path):
        self._catalog = Catalog(Path(root))  # applies the migrations when the store is older
        self._conn = self._catalog.conn
        self._lock = threading.Lock()
        row = self._conn.execute("SELECT MAX(created_ms) FROM stream_events").fetchone()
        self._last_ms = int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._catalog.close()

    # --- stamps -------------------------------------------------------------------------------
    def stamp(self) -> int:
        """A millisecond stamp later than every event written so far (and every stamp handed out)."""
        with self._lock:
            return self._next_ms()

    def _next_ms(self) -> int:
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return self._last_ms

    # --- accounts -----------------------------------------------------------------------------
    def set_callback_url(self, token_id: int, md5_of_token: str, url: str | None) -> None:
        with self._lock, self._catalog.transaction() as c:
            c.execute(
                "INSERT INTO stream_accounts(token_id, token_md5, callback_url, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(token_id) DO UPDATE SET token_md5=excluded.token_md5, "
                "callback_url=excluded.callback_url, updated_at=excluded.updated_at",
                (token_id, md5_of_token, url, time.time()),
            )

    def callback_url(self, token_id: int) -> str | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT callback_url FROM stream_accounts WHERE token_id=?", (token_id,)
            ).fetchone()
        return None if row is None or not row[0] else str(row[0])

    # --- streams ------------------------------------------------------------------------------
    def add_stream(self, token_id: int, md5_of_token: str, radio_id: int, url: str, callbacks: str | None) -> None:
        """Add (or replace) the stream ``radio_id`` of a token."""
        now = time.time()
        category = longpoll_category(md5_of_token, radio_id)
        with self._lock, self._catalog.transaction() as c:
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

    def count_streams(self, token_id: int) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM streams WHERE token_id=?", (token_id,)).fetchone()[0])

    def has_stream(self, token_id: int, radio_id: int) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM streams WHERE token_id=? AND radio_id=?", (token_id, radio_id)
            ).fetchone()
        return row is not None

    def set_stream_url(self, token_id: int, radio_id: int, url: str) -> bool:
        with self._lock, self._catalog.transaction() as c:
            cur = c.execute(
                "UPDATE streams SET url=?, running=0, status_code=NULL, status_message=NULL, updated_at=? "
                "WHERE token_id=? AND radio_id=?",
                (url, time.time(), token_id, radio_id),
            )
            return cur.rowcount > 0

    def delete_stream(self, token_id: int, radio_id: int) -> bool:
        with self._lock, self._catalog.transaction() as c:
            return c.execute("DELETE FROM streams WHERE token_id=? AND radio_id=?", (token_id, radio_id)).rowcount > 0

    def streams(self, token_id: int | None = None, *, active_only: bool = False) -> list[StreamRow]:
        """Streams of one token (or all); ``active_only`` leaves out those of revoked or deleted tokens."""
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
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [
            StreamRow(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                str(r[3]),
                r[4],
                str(r[5]),
                bool(r[6]),
                None if r[7] is None else int(r[7]),
                float(r[8]),
            )
            for r in rows
        ]

    def set_status(self, stream_id: int, running: bool, code: int | None, message: str | None) -> None:
        with self._lock, self._catalog.transaction() as c:
            c.execute(
                "UPDATE streams SET running=?, status_code=?, status_message=? WHERE id=?",
                (int(running), code, message, stream_id),
            )

    # --- events -------------------------------------------------------------------------------
    def add_event(self, token_id: int, radio_id: int, category: str, kind: str, payload: dict[str, object]) -> int:
        """Queue an event; it is pending delivery when the account has a callback URL. Returns its stamp."""
        with self._lock, self._catalog.transaction() as c:
            row = c.execute("SELECT callback_url FROM stream_accounts WHERE token_id=?", (token_id,)).fetchone()
            state = PENDING if row is not None and row[0] else SKIPPED
            ms = self._next_ms()
            c.execute(
                "INSERT INTO stream_events(token_id, radio_id, category, kind, payload, created_ms, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token_id, radio_id, category, kind, json.dumps(payload, ensure_ascii=False), ms, state),
            )
            return ms

    def poll(self, category: str, since_ms: int) -> tuple[Event | None, int]:
        """The first event of ``category`` stamped after ``since_ms`` (golongpoll answers one per
        request) and its stamp; without one, a fresh stamp that every later event will exceed."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM stream_events WHERE category=? AND created_ms>? "
                "ORDER BY created_ms LIMIT 1",
                (category, since_ms),
            ).fetchone()
            if row is None:
                return None, self._next_ms()
        event = _event(row)
        return event, event.created_ms

    def recent_results(self, category: str, limit: int = RECENT_RESULTS) -> list[dict[str, object]] | None:
        """The last ``limit`` songs reported for the stream of ``category``, oldest first, each
        the best result of its callback merged with ``radio_id``, ``timestamp`` and ``play_length``
        (the elements of AudD's ``lastSong`` history); None when no stream has this category."""
        with self._lock:
            known = self._conn.execute(
                "SELECT 1 FROM streams WHERE category=? UNION ALL SELECT 1 FROM stream_events WHERE category=? LIMIT 1",
                (category, category),
            ).fetchone()
            if known is None:
                return None
            rows = self._conn.execute(
                "SELECT payload FROM stream_events WHERE category=? AND kind='result' ORDER BY created_ms DESC LIMIT ?",
                (category, limit),
            ).fetchall()
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

    def due_events(self, now: float, limit: int = 100) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM stream_events WHERE state=? AND next_attempt_at<=? ORDER BY id LIMIT ?",
                (PENDING, now, limit),
            ).fetchall()
        return [_event(r) for r in rows]

    def next_due_at(self) -> float | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(next_attempt_at) FROM stream_events WHERE state=?", (PENDING,)
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def mark(self, event_id: int, state: str, error: str | None = None) -> None:
        with self._lock, self._catalog.transaction() as c:
            c.execute(
                "UPDATE stream_events SET state=?, attempts=attempts+1, last_error=? WHERE id=?",
                (state, error, event_id),
            )

    def retry_later(self, event_id: int, token_id: int, at: float, error: str) -> None:
        """The delivery of ``event_id`` failed: try it again at ``at``, and hold back every later
        pending event of the same account until then (they stay in order)."""
        with self._lock, self._catalog.transaction() as c:
            c.execute(
                "UPDATE stream_events SET attempts=attempts+1, next_attempt_at=?, last_error=? WHERE id=?",
                (at, error[:500], event_id),
            )
            c.execute(
                "UPDATE stream_events SET next_attempt_at=? "
                "WHERE token_id=? AND state=? AND id>? AND next_attempt_at<?",
                (at, token_id, PENDING, event_id, at),
            )

    def pending_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM stream_events WHERE state=?", (PENDING,)).fetchone()[0])

    def prune(self, max_events: int, max_age_s: float) -> tuple[int, int]:
        """Expire pending events older than ``max_age_s``, then keep at most ``max_events`` rows,
        deleting finished events (oldest first) before any pending one. Returns (expired, deleted)."""
        cutoff_ms = int((time.time() - max_age_s) * 1000)
        with self._lock, self._catalog.transaction() as c:
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


_EVENT_COLUMNS = "id, token_id, radio_id, category, kind, payload, created_ms, attempts"


def _event(r: tuple[object, ...]) -> Event:
    return Event(int(r[0]), int(r[1]), int(r[2]), str(r[3]), str(r[4]), json.loads(str(r[5])), int(r[6]), int(r[7]))  # type: ignore[call-overload]
