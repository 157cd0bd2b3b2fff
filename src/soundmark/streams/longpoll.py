"""``GET /longpoll/?category=&timeout=&since_time=``: stream events as AudD serves them (golongpoll).

AudD's backend is jcuga/golongpoll, and the current SDKs read the callback fields at the top
level, so an answer carries both (one event per answer, ../shared/API.md §5.5):
``{"events":[{"timestamp":T,"category":C,"data":P,"id":"…"}],"timestamp":T, **P}``; with no event
before the timeout: ``{"timeout":"no events before timeout","timestamp":T}``. No token is needed:
the category (md5(md5(token) + radio_id)[:9]) is the capability.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from soundmark.streams.registry import StreamStore

MAX_TIMEOUT = 120  # seconds; golongpoll's default limit is 110, AudD documents 1-90
DEFAULT_TIMEOUT = 50
# The request is parsed by routes/streams.py (LongpollParams): malformed values answer golongpoll's
# ``{"error": ...}`` with HTTP 400.


class LongpollHub:
    """Wakes waiting longpoll requests when an event is published (events live in the store)."""

    def __init__(self, store: StreamStore):
        self._store = store
        self._changed = asyncio.Event()

    def published(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, category: str, timeout: float, since_ms: int | None) -> dict[str, object]:
        """The answer for one longpoll request. Without ``since_time`` only events published
        after the request count (golongpoll's default)."""
        if since_ms is None:
            since_ms = int(time.time() * 1000)
        deadline = time.monotonic() + timeout
        while True:
            changed = self._changed  # taken before looking, so a publish in between is not missed
            event, stamp = await asyncio.to_thread(self._store.poll, category, since_ms)
            if event is not None:
                data = event.payload
                return {
                    "events": [{"timestamp": stamp, "category": category, "data": data, "id": str(event.id)}],
                    "timestamp": stamp,
                    **data,
                }
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"timeout": "no events before timeout", "timestamp": stamp}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
