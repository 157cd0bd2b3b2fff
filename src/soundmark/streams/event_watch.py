"""Wake-ups for longpoll across processes: a node that serves the API while another process
(a ``--role monitor`` node) writes the stream events watches the event table's newest id and
calls ``on_new`` when it moved, so a waiting longpoll request looks again at once instead of at
its timeout. In one process the monitor wakes longpoll directly (``LongpollHub.published``)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import CATALOG_FILE

log = logging.getLogger("soundmark.streams")


class EventWatcher:
    """Polls ``MAX(id)`` of ``stream_events`` (the primary key: one index lookup) on its own
    read-only connection; ``PRAGMA data_version`` tells first whether any other connection has
    committed at all since the last look."""

    def __init__(self, root: str | Path, on_new: Callable[[], None]):
        self._path = Path(root) / CATALOG_FILE
        self._on_new = on_new
        self._conn: Connection | None = None
        self._version: int | None = None
        self._latest = 0

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

    async def run(self, interval: float) -> None:
        """Look every ``interval`` seconds until cancelled."""
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
                    self._on_new()
        finally:
            if self._conn is not None:
                self._conn.close()
