"""What the app holds while it runs, opened in ``lifespan`` and reached through ``request.app.state``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.requests import HTTPConnection

from soundmark.auth.tokens import TokenStore
from soundmark.services.recognition_pool import RecognitionPool
from soundmark.settings import Settings
from soundmark.store import Store


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


@dataclass
class AppState:
    settings: Settings
    store: Store  # the parent's reader (catalog lookups; also the single writer for uploads)
    pool: RecognitionPool
    tokens: TokenStore
    metrics: Metrics
    # AudD method name → handler(state, request, ApiRequest) -> result; filled by create_app.
    handlers: dict[str, Callable[..., Awaitable[Any]]] = field(default_factory=dict)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Per-feature objects set up in their lifespans (e.g. the stream monitor, the job runner).
    extras: dict[str, Any] = field(default_factory=dict)


def app_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.soundmark
    return state
