"""``GET /longpoll/?category=&timeout=&since_time=``: stream events as AudD serves them (golongpoll).

AudD's backend is jcuga/golongpoll, and the current SDKs read the callback fields at the top
level, so an answer carries both (one event per answer, ../shared/API.md §5.5):
``{"events":[{"timestamp":T,"category":C,"data":P,"id":"…"}],"timestamp":T, **P}``; with no event
before the timeout: ``{"timeout":"no events before timeout","timestamp":T}``. No token is needed:
the category (md5(md5(token) + radio_id)[:9]) is the capability.

The answers are the response models of audd/models.py (``LongpollEvents``, ``LongpollTimeout``);
an event's stored callback body is read back into its model with the songs' provider blocks in
the order they were stored, so ``wire(answer)`` is the stored JSON, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from soundmark.audd.models import (
    PROVIDERS,
    CallbackNotificationBody,
    CallbackResultBody,
    LongpollEvent,
    LongpollEvents,
    LongpollTimeout,
)
from soundmark.streams.registry import Event, StreamStore

MAX_TIMEOUT = 120  # seconds; golongpoll's default limit is 110, AudD documents 1-90
DEFAULT_TIMEOUT = 50
# The request is parsed by routes/streams.py (LongpollParams): malformed values answer golongpoll's
# ``{"error": ...}`` with HTTP 400.


class LongpollHub:
    """Wakes waiting longpoll requests when an event is published (events live in the store):
    the requests of its category when the publisher names it (another node's event, through the
    watcher's NOTIFY payload), else every request. One ``asyncio.Event`` per category that has
    requests waiting, dropped with its last request."""

    def __init__(self, store: StreamStore):
        self._store = store
        self._changed: dict[str, asyncio.Event] = {}
        self._waiting: dict[str, int] = {}  # requests waiting, per category

    def published(self, category: str | None = None) -> None:
        if category is None:
            woken = list(self._changed.values())
            self._changed.clear()
        else:
            one = self._changed.pop(category, None)
            woken = [] if one is None else [one]
        for changed in woken:
            changed.set()

    async def wait(self, category: str, timeout: float, since_ms: int | None) -> LongpollEvents | LongpollTimeout:
        """The answer for one longpoll request. Without ``since_time`` only events published
        after the request count (golongpoll's default)."""
        if since_ms is None:
            since_ms = int(time.time() * 1000)
        deadline = time.monotonic() + timeout
        self._waiting[category] = self._waiting.get(category, 0) + 1
        try:
            while True:
                # Taken before looking, so a publish in between is not missed.
                changed = self._changed.setdefault(category, asyncio.Event())
                event, stamp = await self._store.apoll(category, since_ms)
                if event is not None:
                    return event_answer(event, stamp)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return LongpollTimeout(timeout="no events before timeout", timestamp=stamp)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            left = self._waiting.pop(category) - 1
            if left:
                self._waiting[category] = left
            else:
                self._changed.pop(category, None)


def event_answer(event: Event, stamp: int) -> LongpollEvents:
    """The answer carrying ``event``: golongpoll's ``events`` and, at the top level, the fields
    of its callback body."""
    body = callback_body(event.payload)
    item = LongpollEvent(timestamp=stamp, category=event.category, data=body, id=str(event.id))
    top = {name: getattr(body, name) for name in body.model_fields_set}
    return LongpollEvents(events=[item], timestamp=stamp, **top)


def callback_body(payload: dict[str, object]) -> CallbackResultBody | CallbackNotificationBody:
    """A stored callback body (streams/callbacks.py wrote it) as its model."""
    if "notification" in payload:
        return CallbackNotificationBody.model_validate(payload)
    body = CallbackResultBody.model_validate(payload)
    stored = payload["result"]
    songs = stored.get("results", []) if isinstance(stored, dict) else []
    for song, raw in zip(body.result.results, songs, strict=True):
        song.order_blocks(tuple(k for k in raw if k in PROVIDERS))
    return body
