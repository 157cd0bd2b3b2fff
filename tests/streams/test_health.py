"""A stream's health row (streams/health.py): what the worker reports reaches the store, at a
bounded rate however often it is reported, and goes with the stream when it is removed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import Guard, LocalDatabase
from soundmark.streams.health import MONITOR_STOPPED, Health, StreamHealth, read_health
from soundmark.streams.registry import StreamStore

T = TypeVar("T")


class CountingDatabase:
    """A real store's ``LocalDatabase`` that counts the writes sent to it."""

    def __init__(self, root: Path):
        self.inner = LocalDatabase(root)
        self.writes = 0

    def write(self, fn: Callable[[sqlite3.Connection], T], *, guard: Guard | None = None) -> T:
        self.writes += 1
        return self.inner.write(fn, guard=guard)

    def read(self, fn: Callable[[Catalog], T]) -> T:
        return self.inner.read(fn)

    def close(self) -> None:
        self.inner.close()


def _stream(root: Path, radio_id: int = 1) -> int:
    root.mkdir(exist_ok=True)
    store = StreamStore(root)
    try:
        store.add_stream(1, "0" * 32, radio_id, f"http://127.0.0.1:9/{radio_id}.mp3", None)
        return next(r.id for r in store.streams() if r.radio_id == radio_id)
    finally:
        store.close()


def _row(db: CountingDatabase, stream_id: int) -> Health | None:
    return db.read(read_health).get(stream_id)


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` in a thread of its own: a browser test earlier in the same run
    (Playwright's sync API) leaves an event loop set on the main thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


async def _until(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_what_the_worker_reports_is_in_the_row(tmp_path: Path) -> None:
    root = tmp_path / "db"
    stream_id = _stream(root)
    db = CountingDatabase(root)

    async def run() -> None:
        health = StreamHealth(stream_id, db, urgent=0.05, routine=0.2)
        health.started()
        await _until("the first row", lambda: _row(db, stream_id) is not None)
        first = _row(db, stream_id)
        assert first is not None and not first.connected and first.now_track_id is None
        health.connected()
        health.audio(1000.0)
        health.playing(7, 990.0)
        await _until("now playing", lambda: (r := _row(db, stream_id)) is not None and r.now_track_id == 7)
        row = _row(db, stream_id)
        assert row is not None and row.connected and row.now_since == 990.0 and row.reconnects == 0
        health.silent(12.0, True)
        await _until("silence", lambda: (r := _row(db, stream_id)) is not None and r.silence)
        health.ended(7)
        health.disconnected("the stream ended")
        health.connected()  # a reconnect
        await _until("the reconnect", lambda: (r := _row(db, stream_id)) is not None and r.reconnects == 1)
        row = _row(db, stream_id)
        assert row is not None and row.connected and row.last_error == "the stream ended"
        assert row.now_track_id is None and not row.silence and row.silent_seconds == 0.0
        await health.close()
        final = _row(db, stream_id)
        assert final is not None and not final.connected and final.last_error == MONITOR_STOPPED
        assert final == Health(**{**health.state.__dict__, "updated_at": final.updated_at})

    try:
        _run(run)
    finally:
        db.close()


def test_writes_are_bounded_however_often_the_worker_reports(tmp_path: Path) -> None:
    root = tmp_path / "db"
    stream_id = _stream(root)
    db = CountingDatabase(root)
    urgent, routine = 0.1, 0.25

    async def run() -> tuple[int, float, StreamHealth]:
        health = StreamHealth(stream_id, db, urgent=urgent, routine=routine)
        began = time.monotonic()
        health.connected()
        for i in range(300):  # a block of audio every 5 ms, and a new song every 50 blocks
            health.audio(1000.0 + i * 0.005)
            if i % 50 == 0:
                health.playing(i, 1000.0 + i * 0.005)
            await asyncio.sleep(0.005)
        await health.close()
        return db.writes, time.monotonic() - began, health

    try:
        writes, elapsed, health = _run(run)
        # One write per urgent gap at most (plus the first at once and the last one at close),
        # far fewer than the 306 reports.
        assert 2 <= writes <= elapsed / urgent + 2, (writes, elapsed)
        row = _row(db, stream_id)
        assert row is not None and row.last_audio_at == health.state.last_audio_at
        assert row.now_track_id is None  # closed: the song is no longer known to play
    finally:
        db.close()


def test_the_row_goes_with_its_stream(tmp_path: Path) -> None:
    root = tmp_path / "db"
    kept, removed = _stream(root, 1), _stream(root, 2)
    db = CountingDatabase(root)

    async def run() -> None:
        for stream_id in (kept, removed):
            health = StreamHealth(stream_id, db, urgent=0.0, routine=0.0)
            health.connected()
            await health.close()

    try:
        _run(run)
        assert set(db.read(read_health)) == {kept, removed}
        store = StreamStore(root)
        assert store.delete_stream(1, 2)
        store.close()
        assert set(db.read(read_health)) == {kept}

        # A worker that reports after its stream was removed writes nothing (and fails nothing).
        async def late() -> None:
            health = StreamHealth(removed, db, urgent=0.0, routine=0.0)
            health.connected()
            await health.close()

        _run(late)
        assert set(db.read(read_health)) == {kept}
    finally:
        db.close()


def test_without_a_database_nothing_is_written() -> None:
    async def run() -> StreamHealth:
        health = StreamHealth(5)
        health.started()
        health.connected()
        health.playing(3, 1.0)
        await health.close()
        return health

    health = _run(run)
    assert health.writes == 0 and health.state.now_track_id is None and not health.state.connected
