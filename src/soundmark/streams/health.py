"""The health of one monitored stream — connected or not and since when, the last audio, silence,
reconnects, the last error, the song playing now — kept in the store (``stream_health``,
catalog/schema_health.py), so a page served by another process than the monitor can show it.

``StreamHealth`` is fed by the stream's worker (monitor.py) on the event loop; each call only
changes the state in memory. Writes go through the store's ``Database`` (the server's one writer:
no SQL on the event loop) at a bounded rate: a change of state (connected, down, now playing,
silence) is written at most ``URGENT_SECONDS`` after the previous write, anything else (last
audio, seconds of silence) at most every ``ROUTINE_SECONDS``; however often the worker calls, a
stream costs at most one write per ``URGENT_SECONDS``. Without a ``Database`` (direct monitoring,
tests of the monitor) nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from soundmark.catalog.sql import Connection, Row
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import Database, read_async, write_async

log = logging.getLogger("soundmark.streams")

URGENT_SECONDS = 2.0  # a change of state waits at most this long after the previous write
ROUTINE_SECONDS = 5.0  # last audio and seconds of silence: at most one write this often
MAX_ERROR_CHARS = 300
MONITOR_STOPPED = "monitoring stopped"


@dataclass(frozen=True)
class Health:
    """What ``stream_health`` holds for one stream (unix times in seconds)."""

    stream_id: int
    connected: bool = False
    since: float | None = None  # when it connected, or went down
    last_audio_at: float | None = None
    silent_seconds: float = 0.0
    silence: bool = False  # silence has lasted ``stream_silence_seconds`` (notification 651)
    reconnects: int = 0  # connections after the first
    last_error: str | None = None
    error_at: float | None = None
    now_track_id: int | None = None
    now_since: float | None = None
    updated_at: float = 0.0


class StreamHealth:
    """One stream's health as its worker sees it, written to ``db`` at a bounded rate."""

    def __init__(
        self,
        stream_id: int,
        db: Database | None = None,
        *,
        urgent: float = URGENT_SECONDS,
        routine: float = ROUTINE_SECONDS,
        clock: Callable[[], float] = time.time,
    ):
        self._db, self._urgent, self._routine, self._clock = db, urgent, routine, clock
        self.state = Health(stream_id, since=clock())
        self.writes = 0  # rows written (for tests and benchmarks)
        self._connections = 0
        self._last_write = float("-inf")  # monotonic
        self._due = float("inf")
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = self._dirty_urgent = False
        self._closed = False

    # --- what the worker reports (on the event loop; no I/O here) ------------------------------
    def started(self) -> None:
        """The worker started: the row says it is connecting."""
        self._set(True)

    def connected(self) -> None:
        reconnects = self.state.reconnects + (1 if self._connections else 0)
        self._connections += 1
        self._change(
            True, connected=True, since=self._clock(), reconnects=reconnects, silent_seconds=0.0, silence=False
        )

    def disconnected(self, reason: str) -> None:
        """A connection ended (or could not be made): ``reason`` says why."""
        now = self._clock()
        since = now if self.state.connected else self.state.since
        self._change(
            True, connected=False, since=since, last_error=reason[:MAX_ERROR_CHARS], error_at=now,
            now_track_id=None, now_since=None, silent_seconds=0.0, silence=False,
        )  # fmt: skip

    def audio(self, at: float) -> None:
        """A block of audio arrived at ``at``."""
        self._change(False, last_audio_at=at)

    def silent(self, seconds: float, flagged: bool) -> None:
        """Seconds of silence up to now (0: music again); ``flagged``: long enough to be reported."""
        urgent = flagged != self.state.silence or (seconds == 0.0) != (self.state.silent_seconds == 0.0)
        self._change(urgent, silent_seconds=round(seconds, 1), silence=flagged)

    def playing(self, track_id: int, since: float) -> None:
        """The song ``track_id`` is surely playing, first heard at ``since``."""
        self._change(True, now_track_id=track_id, now_since=since)

    def ended(self, track_id: int) -> None:
        """The song ``track_id`` is over (nothing is playing until the next one is heard)."""
        if self.state.now_track_id == track_id:
            self._change(True, now_track_id=None, now_since=None)

    async def close(self, *, write: bool = True) -> None:
        """The worker stopped: write the last state (not connected) now, then nothing more;
        ``write=False``: nothing at all (the stream went to another node, whose rows count now)."""
        if self._closed:
            return
        if not write:
            self._db = None  # a write in flight finishes; none is scheduled after it
        if self.state.connected:
            self.disconnected(MONITOR_STOPPED)
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._dirty and self._db is not None:
            await self._write()

    # --- bounded writing ----------------------------------------------------------------------
    def _change(self, urgent: bool, **changes: object) -> None:
        new = replace(self.state, **changes)  # type: ignore[arg-type]
        if new != self.state:
            self.state = new
            self._set(urgent)

    def _set(self, urgent: bool) -> None:
        self._dirty = True
        self._dirty_urgent = self._dirty_urgent or urgent
        if self._db is None or self._closed or self._task is not None:
            return  # a write in flight schedules the next one when it is done
        self._schedule()

    def _schedule(self) -> None:
        now = time.monotonic()
        gap = self._urgent if self._dirty_urgent else self._routine
        due = max(now, self._last_write + gap)
        if self._timer is not None:
            if due >= self._due:
                return
            self._timer.cancel()
        self._due = due
        self._timer = asyncio.get_running_loop().call_later(due - now, self._fire)

    def _fire(self) -> None:
        self._timer, self._due = None, float("inf")
        if not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._write_then_next())

    async def _write_then_next(self) -> None:
        try:
            await self._write()
        finally:
            self._task = None
            if self._dirty and not self._closed:
                self._schedule()

    async def _write(self) -> None:
        if self._db is None:  # closed without writing (close(write=False))
            return
        self._last_write = time.monotonic()
        self._dirty = self._dirty_urgent = False
        row = replace(self.state, updated_at=self._clock())
        try:
            await write_async(self._db, _upsert(row))
            self.writes += 1
        except (sqlite3.Error, RuntimeError) as exc:  # a locked store, a closing writer: next time
            log.warning("stream health not written", extra={"fields": {"stream": row.stream_id, "error": str(exc)}})


_COLUMNS = (
    "stream_id, connected, since, last_audio_at, silent_seconds, silence, reconnects, last_error, error_at, "
    "now_track_id, now_since, updated_at"
)
_UPSERT = (
    f"INSERT INTO stream_health({_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
    "WHERE EXISTS (SELECT 1 FROM streams WHERE id = ?) "  # a stream removed meanwhile gets no row
    "ON CONFLICT(stream_id) DO UPDATE SET connected=excluded.connected, since=excluded.since, "
    "last_audio_at=excluded.last_audio_at, silent_seconds=excluded.silent_seconds, silence=excluded.silence, "
    "reconnects=excluded.reconnects, last_error=excluded.last_error, error_at=excluded.error_at, "
    "now_track_id=excluded.now_track_id, now_since=excluded.now_since, updated_at=excluded.updated_at"
)


def _upsert(h: Health) -> Callable[[Connection], None]:
    args = (
        h.stream_id, int(h.connected), h.since, h.last_audio_at, h.silent_seconds, int(h.silence), h.reconnects,
        h.last_error, h.error_at, h.now_track_id, h.now_since, h.updated_at, h.stream_id,
    )  # fmt: skip

    def write(conn: Connection) -> None:
        conn.execute(_UPSERT, args)

    return write


def read_health(c: Catalog) -> dict[int, Health]:
    """Every stream's health row, by stream id (one row per stream: bounded by the streams)."""
    rows = c.conn.execute(f"SELECT {_COLUMNS} FROM stream_health").fetchall()
    return {int(r[0]): _health(r) for r in rows}


async def aread_health(db: Database) -> dict[int, Health]:
    found: dict[int, Health] = await read_async(db, read_health)
    return found


def _health(r: Row) -> Health:
    def real(v: object) -> float | None:
        return None if v is None else float(v)  # type: ignore[arg-type]

    return Health(
        int(r[0]), bool(r[1]), real(r[2]), real(r[3]), float(r[4] or 0.0), bool(r[5]), int(r[6] or 0),
        None if r[7] is None else str(r[7]), real(r[8]), None if r[9] is None else int(r[9]), real(r[10]),
        float(r[11]),
    )  # fmt: skip
