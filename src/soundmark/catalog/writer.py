"""The single-writer discipline for a store's SQLite catalog in a long-running process.

``DbWriter`` is one thread owning the process's one write connection; write functions are queued
to it (a bounded queue) and their results come back as futures: ``await writer.run(fn)`` from
async code, ``writer.call(fn)`` from other threads. Each function runs in its own short
``BEGIN IMMEDIATE`` transaction, so a lock held by another process (``soundmark add``) is waited
for in the writer thread, never on the event loop. ``ReadPool`` runs reads on a few threads, each
with its own read-only connection (WAL readers never wait for a writer).

``Database`` is what a store class (streams, jobs) needs: ``write(fn)`` and ``read(fn)``.
``ServerDatabase`` sends them through a writer and a read pool; ``LocalDatabase`` is one
connection under a lock, for the CLI and tests, where a process does one thing at a time.
``write_async`` / ``read_async`` are the event loop's way to either: a ``ServerDatabase`` is
awaited (no thread of the default pool waits on the writer), a ``LocalDatabase`` runs in a thread.

``refuse_on_loop(conn)`` makes a connection that the server keeps for threads (the ``Store``'s)
fail any statement run from the event loop's thread: a synchronous read on the loop is a bug.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import Catalog

log = logging.getLogger("soundmark.db")

T = TypeVar("T")
R = TypeVar("R")

MAX_QUEUED_WRITES = 1024  # write functions waiting for the writer before submitters wait too
READ_THREADS = 4
BUSY_RETRIES = 10  # rounds of the connection's busy_timeout (30 s each) a write waits for a lock
_BUSY_PAUSE_S = 0.05  # between two rounds


def is_busy(exc: BaseException) -> bool:
    """An SQLite error that means another connection holds the lock (try again later)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


# A lock taken around a write function and its COMMIT (a ``threading.Lock``).
Guard = AbstractContextManager[Any]


@dataclass
class _Task:
    fn: Callable[[Any], Any]
    mode: str  # "transaction" | "resource"
    guard: Guard | None
    future: concurrent.futures.Future[Any]


def in_transaction(conn: Connection, fn: Callable[[Connection], T], guard: Guard | None = None) -> T:
    """Run ``fn(conn)`` in one IMMEDIATE transaction. The write lock is waited for first (without
    ``guard``); ``fn`` and the COMMIT then run under ``guard``, so a reader that takes the same
    guard sees either nothing of ``fn``'s work or all of it together with its in-process effects."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        with guard if guard is not None else contextlib.nullcontext():
            result = fn(conn)
            conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class DbWriter(Generic[R]):
    """One thread, one write connection, a bounded queue of write functions.

    ``open_resource`` is called in the writer thread and gives what it writes through (a
    ``Catalog``, or a ``Store`` whose commits need the index too); ``connection`` tells its SQLite
    connection. Nothing else in the process may write through that resource.
    """

    def __init__(
        self,
        open_resource: Callable[[], R],
        connection: Callable[[R], Connection],
        close_resource: Callable[[R], None],
        *,
        max_queued: int = MAX_QUEUED_WRITES,
        name: str = "soundmark-db-writer",
    ):
        self._connection = connection
        self._close_resource = close_resource
        self._queue: queue.Queue[_Task | None] = queue.Queue(max_queued)
        self._opened: concurrent.futures.Future[R] = concurrent.futures.Future()
        self._closed = False
        self._thread = threading.Thread(target=self._main, args=(open_resource,), name=name, daemon=True)
        self._thread.start()
        self._opened.result()  # raises what opening raised

    # --- submitting -----------------------------------------------------------------------------
    def _task(self, fn: Callable[[Any], T], mode: str, guard: Guard | None) -> _Task:
        if self._closed:
            raise RuntimeError("the database writer is closed")
        return _Task(fn, mode, guard, concurrent.futures.Future())

    def submit(
        self, fn: Callable[[Any], T], *, mode: str = "transaction", guard: Guard | None = None
    ) -> concurrent.futures.Future[T]:
        """Queue ``fn`` (blocking while the queue is full); ``mode``: ``transaction`` (``fn(conn)``
        in its own transaction) or ``resource`` (``fn(resource)``, managing its own transactions)."""
        task = self._task(fn, mode, guard)
        self._queue.put(task)
        return task.future

    async def _submit_async(self, fn: Callable[[Any], T], mode: str, guard: Guard | None) -> T:
        task = self._task(fn, mode, guard)
        try:
            self._queue.put_nowait(task)
        except queue.Full:  # back-pressure: wait for room off the loop
            await asyncio.to_thread(self._queue.put, task)
        result: T = await asyncio.wrap_future(task.future)
        return result

    async def run(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
        """``fn(conn)`` in its own transaction in the writer thread; the event loop never waits."""
        return await self._submit_async(fn, "transaction", guard)

    async def run_with(self, fn: Callable[[R], T]) -> T:
        """``fn(resource)`` in the writer thread (it manages its own transactions)."""
        return await self._submit_async(fn, "resource", None)

    def call(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
        """``fn(conn)`` in its own transaction, from a thread that may block (not the event loop)."""
        _not_on_loop()
        return self.submit(fn, guard=guard).result()

    def call_with(self, fn: Callable[[R], T]) -> T:
        _not_on_loop()
        return self.submit(fn, mode="resource").result()

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def close(self) -> None:
        """Run what is queued, then stop the thread and close the connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()

    # --- the thread -----------------------------------------------------------------------------
    def _main(self, open_resource: Callable[[], R]) -> None:
        try:
            resource = open_resource()
        except BaseException as exc:
            self._opened.set_exception(exc)
            return
        self._opened.set_result(resource)
        conn = self._connection(resource)
        try:
            while (task := self._queue.get()) is not None:
                if task.future.set_running_or_notify_cancel():
                    self._execute(task, resource, conn)
        finally:
            self._close_resource(resource)

    def _execute(self, task: _Task, resource: R, conn: Connection) -> None:
        for attempt in range(BUSY_RETRIES):
            try:
                transaction = task.mode == "transaction"
                result = in_transaction(conn, task.fn, task.guard) if transaction else task.fn(resource)
            except BaseException as exc:
                if is_busy(exc) and attempt + 1 < BUSY_RETRIES:
                    fields = {"round": attempt + 1}
                    log.warning("catalog locked by another process; the write waits", extra={"fields": fields})
                    time.sleep(_BUSY_PAUSE_S)
                    continue
                task.future.set_exception(exc)
                return
            task.future.set_result(result)
            return


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_on_loop(conn: Connection) -> None:
    """Interrupt every statement ``conn`` runs in a thread with a running event loop (the
    statement raises ``sqlite3.OperationalError: interrupted``, logged with where it came from).
    The check runs at each virtual-machine step; the connection is meant for the few reads a
    thread makes (``store.refresh``), never for the request path. (A PostgreSQL connection has no
    such hook: there the guard is the tests' SQLite runs.)"""
    if not isinstance(conn, sqlite3.Connection):
        return

    def check() -> int:
        if not _on_loop():
            return 0
        log.error("a synchronous database call on the event loop", stack_info=True)
        return 1

    conn.set_progress_handler(check, 1)


def _not_on_loop() -> None:
    """Blocking calls from the event loop's thread would stall every request: refuse them."""
    if _on_loop():
        raise RuntimeError("a blocking database call on the event loop: await run() or use asyncio.to_thread")


class ReadPool:
    """Reads on ``threads`` threads, each with its own read-only connection to the catalog."""

    def __init__(self, root: Path, *, threads: int = READ_THREADS, name: str = "soundmark-db-read"):
        if threads < 1:
            raise ValueError("a read pool needs at least one thread")
        self.root = Path(root)
        self._local = threading.local()
        self._opened: list[Catalog] = []
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    def _catalog(self) -> Catalog:
        catalog: Catalog | None = getattr(self._local, "catalog", None)
        if catalog is None:
            catalog = Catalog(self.root, readonly=True)
            self._local.catalog = catalog
            with self._lock:
                self._opened.append(catalog)
        return catalog

    def _read(self, fn: Callable[[Catalog], T]) -> T:
        return fn(self._catalog())

    async def run(self, fn: Callable[[Catalog], T]) -> T:
        """``fn(catalog)`` on a read thread; the event loop does not wait."""
        return await asyncio.wrap_future(self._executor.submit(self._read, fn))

    def call(self, fn: Callable[[Catalog], T]) -> T:
        _not_on_loop()
        return self._executor.submit(self._read, fn).result()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for catalog in self._opened:
                catalog.close()
            self._opened.clear()


class Database(Protocol):
    """How a store class reaches SQLite: writes in one transaction each, reads on a catalog."""

    def write(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T: ...
    def read(self, fn: Callable[[Catalog], T]) -> T: ...


class LocalDatabase:
    """One read-write connection under a lock: for processes that do one thing at a time (the CLI,
    tests). A lock held by another process is waited for in the calling thread."""

    def __init__(self, root: Path):
        self.catalog = Catalog(Path(root))  # applies the migrations when the store is older
        self._lock = threading.RLock()

    def write(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
        with self._lock:
            return in_transaction(self.catalog.conn, fn, guard)

    def read(self, fn: Callable[[Catalog], T]) -> T:
        with self._lock:
            return fn(self.catalog)

    def close(self) -> None:
        with self._lock:
            self.catalog.close()


class ServerDatabase(Generic[R]):
    """A writer and a read pool: the server process's way to the catalog (``Database``), with
    async variants for the event loop."""

    def __init__(self, writer: DbWriter[R], reads: ReadPool):
        self.writer = writer
        self.reads = reads

    def write(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
        return self.writer.call(fn, guard=guard)

    def read(self, fn: Callable[[Catalog], T]) -> T:
        return self.reads.call(fn)

    async def awrite(self, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
        return await self.writer.run(fn, guard=guard)

    async def aread(self, fn: Callable[[Catalog], T]) -> T:
        return await self.reads.run(fn)

    def close(self) -> None:
        self.writer.close()
        self.reads.close()


async def write_async(db: Database, fn: Callable[[Connection], T], *, guard: Guard | None = None) -> T:
    """``db.write(fn)`` from the event loop: awaited through the server's writer (no thread
    waits for it), or in a thread for a ``LocalDatabase``."""
    if isinstance(db, ServerDatabase):
        result: T = await db.awrite(fn, guard=guard)
        return result
    return await asyncio.to_thread(db.write, fn, guard=guard)


async def read_async(db: Database, fn: Callable[[Catalog], T]) -> T:
    """``db.read(fn)`` from the event loop: on the server's read pool, or in a thread."""
    if isinstance(db, ServerDatabase):
        result: T = await db.aread(fn)
        return result
    return await asyncio.to_thread(db.read, fn)


@contextlib.contextmanager
def _open_lock(path: Path) -> Iterator[int]:
    with open(path, "a+") as fh:
        yield fh.fileno()


def flock_free(path: Path) -> bool:
    """Whether no process holds the ``flock`` on ``path`` now (taken and released at once)."""
    with _open_lock(path) as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
