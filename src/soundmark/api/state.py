"""What the app holds while it runs, opened in ``lifespan`` and reached through ``request.app.state``.

The catalog is reached three ways: ``store`` reads (track lookups, the index), ``db`` is the
single writer and the read pool (every SQLite write of the server goes through ``db.writer``,
reads that must not touch the event loop through ``db.reads``), and ``usage`` admits requests
against their quotas and counts them through the writer in the background (on PostgreSQL with
one atomic statement on the read thread instead: auth/usage.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import HTTPConnection

from soundmark.auth.usage import UsageCounter
from soundmark.catalog.sql import Connection
from soundmark.catalog.writer import DbWriter, ReadPool, ServerDatabase, flock_free
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.recognition_pool import RecognitionPool
from soundmark.settings import Settings
from soundmark.store import LOCK_FILE, Store

log = logging.getLogger("soundmark.api")
T = TypeVar("T")
STORE_LOCK_POLL_S = 0.2  # how often an upload looks whether `soundmark add` still holds the store


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter("soundmark_requests", "API requests", ["method", "status"], registry=r)
        self.errors = Counter("soundmark_errors", "API errors by AudD code", ["code"], registry=r)
        self.matches = Counter("soundmark_recognitions", "Recognitions by outcome", ["outcome"], registry=r)
        self.latency = Histogram(
            "soundmark_request_seconds", "Request latency", ["method"], registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )  # fmt: skip
        self.inflight = Gauge("soundmark_inflight", "Recognitions queued or running", registry=r)
        self.tracks = Gauge("soundmark_catalog_tracks", "Tracks in the catalog", registry=r)
        self.write_queue = Gauge("soundmark_db_write_queue", "Writes waiting for the database writer", registry=r)
        self.usage_pending = Gauge("soundmark_usage_pending", "Admitted requests not stored yet", registry=r)


ServerDb = ServerDatabase[Store]


def open_database(settings: Settings, params: FingerprintParams) -> ServerDb:
    """The server's writer (its own ``Store``, so an upload commits segment and rows in the
    writer thread) and its read pool."""
    writer = DbWriter(
        lambda: Store(settings.db, params, create=True, index_url=settings.index_url, catalog_url=settings.catalog_url),
        lambda s: s.catalog.conn,
        Store.close,
        max_queued=settings.db_write_queue,
    )  # fmt: skip
    return ServerDatabase(writer, ReadPool(settings.db, threads=settings.db_readers))


def usage_counter(db: ServerDb) -> UsageCounter:
    """Quota counting whose writes go through ``db``'s writer (failures are logged, the counts
    stay pending and go with the next batch)."""

    def schedule(fn: Callable[[Connection], None], guard: threading.Lock) -> None:
        db.writer.submit(fn, guard=guard).add_done_callback(_log_failure)

    return UsageCounter(schedule)


def _log_failure(future: concurrent.futures.Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("counting usage failed", exc_info=exc)


@dataclass
class AppState:
    settings: Settings
    store: Store  # the parent's reader (catalog lookups, the index); never written through
    pool: RecognitionPool
    db: ServerDb
    usage: UsageCounter
    metrics: Metrics
    # AudD method name → handler(state, request, ApiRequest) -> result; filled by create_app.
    handlers: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Per-feature objects set up in their lifespans (e.g. the stream monitor, the job runner).
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics.write_queue.set_function(lambda: self.db.writer.queued)
        self.metrics.usage_pending.set_function(self.usage.pending)

    async def write_store(self, fn: Callable[[Store], T]) -> T:
        """``fn(store)`` in the writer thread with the writer's own ``Store`` (an upload's commit
        through ``store.writer()``). While another process (``soundmark add``) holds the store's
        write lock this waits here, asleep, so the writer thread keeps serving the other writes."""
        lock = self.store.root / LOCK_FILE
        while not flock_free(lock):
            await asyncio.sleep(STORE_LOCK_POLL_S)
        return await self.db.writer.run_with(fn)


def app_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.soundmark
    return state
