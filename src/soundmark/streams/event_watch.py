"""Wake-ups for longpoll across processes: a node that serves the API while another process
(a ``--role monitor`` node, here or on another machine) writes the stream events learns that an
event was written and calls ``on_new``, so a waiting longpoll request looks again at once instead
of at its timeout. In one process the monitor wakes longpoll directly (``LongpollHub.published``).
``on_new`` gets the event's category when it is known (PostgreSQL's NOTIFY payload: only that
category's requests look again), else None (every request looks).

One watcher per process, whatever the number of longpoll requests waiting (they wait on the hub):

- SQLite: polls ``MAX(id)`` of ``stream_events`` (the primary key: one index lookup) on its own
  read-only connection; ``PRAGMA data_version`` tells first whether any other connection has
  committed at all since the last look;
- PostgreSQL: one connection that ``LISTEN``s on ``soundmark_events``; every event's transaction
  sends ``pg_notify('soundmark_events', category)`` (registry.py), delivered when it commits. The
  channel is the database's, not the schema's: a catalog sharing the database with another only
  gets spurious wake-ups (a poll each). While the connection is down (reconnecting with backoff)
  requests wait for their timeout, and a reconnect wakes them all once, for what was missed.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg

from soundmark.catalog.sql import Connection, parse_pg_url
from soundmark.catalog.sqlite import CATALOG_FILE, catalog_url
from soundmark.streams.registry import EVENTS_CHANNEL

log = logging.getLogger("soundmark.streams")

LISTEN_CHECK_SECONDS = 30.0  # a silent listening connection is checked this often (a dead TCP peer)
RECONNECT_MAX_SECONDS = 30.0


class EventWatcher:
    """Calls ``on_new`` when another process wrote a stream event (see the module docstring)."""

    def __init__(self, root: str | Path, on_new: Callable[[str | None], None]):
        self._path = Path(root) / CATALOG_FILE
        self._url = catalog_url(root)  # a PostgreSQL catalog: LISTEN instead of polling
        self._on_new = on_new
        self._conn: Connection | None = None
        self._version: int | None = None
        self._latest = 0
        self.listening = asyncio.Event()  # PostgreSQL: set while the LISTEN connection is up

    @property
    def shared(self) -> bool:
        """Whether the catalog is PostgreSQL's (other nodes may write events, monitors included)."""
        return self._url is not None

    async def run(self, interval: float) -> None:
        """Watch until cancelled: ``interval`` is SQLite's polling period."""
        if self._url is not None:
            await self._listen(self._url)
        else:
            await self._poll(interval)

    # --- PostgreSQL ---------------------------------------------------------------------------
    async def _listen(self, url: str) -> None:
        dsn = parse_pg_url(url).dsn
        pause = 1.0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=10)
                try:
                    await conn.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening.set()
                    pause = 1.0
                    self._on_new(None)  # what was written while not listening
                    while True:
                        async for note in conn.notifies(timeout=LISTEN_CHECK_SECONDS):
                            self._on_new(note.payload or None)
                        await conn.execute("SELECT 1")  # quiet for a while: is the peer still there?
                finally:
                    self.listening.clear()
                    await conn.close()
            except psycopg.Error as exc:
                log.warning("stream event listener down", extra={"fields": {"error": str(exc), "retry_in": pause}})
            await asyncio.sleep(pause)
            pause = min(RECONNECT_MAX_SECONDS, pause * 2)

    # --- SQLite -------------------------------------------------------------------------------
    def _look(self) -> bool:
        """Whether an event was added since the last look (blocking)."""
        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, check_same_thread=False)
            self._conn.execute("PRAGMA busy_timeout=5000")
        version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        if version == self._version:
            return False
        self._version = version
        latest = int(self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM stream_events").fetchone()[0])
        moved, self._latest = latest != self._latest, latest
        return moved

    async def _poll(self, interval: float) -> None:
        try:
            await asyncio.to_thread(self._look)  # the starting point: events already there are old
            while True:
                await asyncio.sleep(interval)
                try:
                    moved = await asyncio.to_thread(self._look)
                except sqlite3.Error:
                    log.exception("stream event watch failed")
                    continue
                if moved:
                    self._on_new(None)
        finally:
            if self._conn is not None:
                self._conn.close()
