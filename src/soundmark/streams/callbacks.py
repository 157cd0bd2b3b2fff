"""Stream events as AudD's callback bodies, written to the durable queue and POSTed to the account's
callback URL with retries.

Result: ``{"status":"success","result":{"radio_id","timestamp","play_length","results":[song, ...]}}``;
notification: ``{"status":"-","notification":{"radio_id","stream_running","notification_code",
"notification_message"},"time":<unix s>}`` (AudD's fixtures; the SDK's ``parse_callback`` reads both).
Delivery keeps each account's events in order: a failed POST defers every pending event of that
account, with exponential backoff, until the receiver answers 2xx again.

Every monitor node delivers, and each event is POSTed by one node: a round first claims the due
events (registry ``claim_due``: one write transaction sets ``owner`` to the node and
``next_attempt_at`` to the end of the claim), POSTs them, and hands back what it did not get to
before the claim would run out. A node that dies holding a claim leaves its events due again when
the claim ends (``CLAIM_SECONDS``), and another node delivers them. What is guaranteed: no two
nodes POST an event at the same time, and an event is POSTed again only when its node died (or
lost the catalog) between the receiver's 2xx and recording it (at-least-once, not exactly-once,
for that window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from soundmark.audd.metadata import parse_return
from soundmark.audd.models import wire
from soundmark.audd.presenter import stream_song
from soundmark.catalog.models import Track
from soundmark.net.addresses import AddressPolicy
from soundmark.net.transport import AsyncPinnedClient, Limits, NetError
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.settings import Settings
from soundmark.streams.leases import new_node_id
from soundmark.streams.monitor import StreamJob
from soundmark.streams.registry import DELIVERED, SKIPPED, Event, StreamStore
from soundmark.streams.tracker import Play
from soundmark.streams.zone import format_timestamp

log = logging.getLogger("soundmark.streams")

NO_OP_RECEIVERS = ("audd.tech/empty",)  # AudD's documented "no receiver" URL for longpoll-only use
PRUNE_EVERY = 60.0  # seconds
CLAIM_BATCH = 20  # events claimed per round
# How long a claim lasts: a dead node's events wait this long. A round stops POSTing when less
# than two POSTs (connect + read, callback_timeout each) are left of it, so it never runs out mid-POST.
CLAIM_SECONDS = 60.0

TrackLookup = Callable[[int], Awaitable[Track | None]]  # a catalog track by id, read off the event loop


def percent_score(score: float, min_score: float) -> int:
    """The engine's confidence (−log10 p) on AudD's 0–100 integer scale: 50 at the acceptance
    threshold, 75 at twice it, 88 at three times, approaching 100."""
    if min_score <= 0:
        return 100
    return max(0, min(100, round(100 * (1 - 0.5 ** (max(score, 0.0) / min_score)))))


def callback_options(url: str | None) -> tuple[list[str], str]:
    """The ``return`` blocks and ``market`` asked for in the callback URL's query string."""
    if not url:
        return [], "us"
    qs = parse_qs(urlsplit(url).query)
    return parse_return((qs.get("return") or [""])[0]), (qs.get("market") or ["us"])[0]


def song_dict(
    match: WorkerMatch, track: Track, base: str, wanted: list[str], market: str, min_score: float
) -> dict[str, object]:
    """A callback's song object (audd/presenter.py), as the JSON stored in the event queue."""
    score = percent_score(match.score, min_score)
    song: dict[str, object] = wire(stream_song(match, track, base, wanted, market, score))
    return song


def result_payload(
    radio_id: int, play: Play, songs: list[dict[str, object]], tz: str, *, with_length: bool
) -> dict[str, object]:
    result: dict[str, object] = {"radio_id": radio_id, "timestamp": format_timestamp(play.start, tz)}
    if with_length:
        result["play_length"] = play.play_length
    result["results"] = songs
    return {"status": "success", "result": result}


def notification_payload(radio_id: int, code: int, message: str, running: bool) -> dict[str, object]:
    return {
        "status": "-",
        "notification": {
            "radio_id": radio_id,
            "stream_running": running,
            "notification_code": code,
            "notification_message": message,
        },
        "time": int(time.time()),
    }


class EventSink:
    """What the monitor reports goes into the store's event queue (then to callbacks and longpoll).
    Every read and write is awaited (the server's read pool and writer): nothing runs SQL on the
    event loop, and no thread of the default pool waits for the writer."""

    def __init__(
        self,
        store: StreamStore,
        settings: Settings,
        track: TrackLookup,
        base_url: str,
        published: Callable[[], None],
    ):
        self._store, self._settings, self._track, self._base, self._published = (
            store,
            settings,
            track,
            base_url,
            published,
        )

    async def song(self, job: StreamJob, play: Play, final: bool) -> None:
        url = await self._store.acallback_url(job.token_id)
        wanted, market = callback_options(url)
        songs = []
        for m in [play.best, *play.alternatives]:
            track = await self._track(m.track_id)
            if track is not None:
                songs.append(song_dict(m, track, self._base, wanted, market, self._settings.min_score))
        if not songs:
            return
        payload = result_payload(job.radio_id, play, songs, self._settings.callback_timezone, with_length=final)
        await self._add(job, "result", payload)

    async def notify(self, job: StreamJob, code: int, message: str, running: bool) -> None:
        await self._store.aset_status(job.key, running, code, message)
        await self._add(job, "notification", notification_payload(job.radio_id, code, message, running))

    async def status(self, job: StreamJob, running: bool) -> None:
        await self._store.aset_status(job.key, running, 0 if running else None, None)

    async def _add(self, job: StreamJob, kind: str, payload: dict[str, object]) -> None:
        await self._store.aadd_event(job.token_id, job.radio_id, job.category, kind, payload)
        self._published()


class CallbackDeliverer:
    """POSTs pending events, oldest first, retrying with exponential backoff; prunes the queue
    (every store call awaited, as in ``EventSink``)."""

    def __init__(self, store: StreamStore, settings: Settings, node_id: str | None = None):
        self._store, self._s = store, settings
        self.node_id = node_id or new_node_id()  # the owner of this node's claims
        self._wake = asyncio.Event()
        self.delivered = 0

    def poke(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        timeout = self._s.callback_timeout
        client = AsyncPinnedClient(AddressPolicy.from_settings(self._s), Limits(connect=timeout, read=timeout))
        last_prune = 0.0
        async with client:
            while True:
                try:
                    if time.monotonic() - last_prune > PRUNE_EVERY:
                        last_prune = time.monotonic()
                        await self._prune()
                    await self._round(client)
                    wait = 30.0
                    due = await self._store.anext_due_at()
                    if due is not None:
                        wait = max(0.05, min(wait, due - time.time()))
                except Exception:  # the loop must survive anything (a locked store, a bad payload)
                    log.exception("callback delivery round failed")
                    wait = 5.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
                self._wake.clear()

    async def _prune(self) -> None:
        expired, deleted = await self._store.aprune(self._s.stream_events_max, self._s.callback_max_age_hours * 3600)
        if expired or deleted:
            log.warning("stream events pruned", extra={"fields": {"expired": expired, "deleted": deleted}})

    async def _round(self, client: AsyncPinnedClient) -> None:
        now = time.time()
        if not await self._store.adue_events(now, 1):
            return  # nothing due: no write transaction (a claim takes the catalog's write lock)
        claim = max(CLAIM_SECONDS, 6 * self._s.callback_timeout)
        until = now + claim
        events = await self._store.aclaim_due(self.node_id, now, until, CLAIM_BATCH)
        try:
            await self._deliver(client, events, until)
        finally:
            if events:  # what this round did not get to is due again at once, for any node
                await self._store.arelease_claims(self.node_id, until, time.time())

    async def _deliver(self, client: AsyncPinnedClient, events: list[Event], until: float) -> None:
        urls: dict[int, str | None] = {}
        blocked: set[int] = set()
        for ev in events:
            if ev.token_id in blocked:
                continue
            if time.time() + 2 * self._s.callback_timeout > until:
                return  # the claim would run out during the POST
            if ev.token_id not in urls:
                urls[ev.token_id] = await self._store.acallback_url(ev.token_id)
            url = urls[ev.token_id]
            if not url or any(x in url for x in NO_OP_RECEIVERS):
                await self._store.amark(ev.id, SKIPPED)
                continue
            error = await post_json(client, url, ev.payload)
            if error is None:
                self.delivered += 1
                await self._store.amark(ev.id, DELIVERED)
                continue
            delay = min(self._s.callback_retry_max_seconds, 2.0**ev.attempts)
            log.info("callback failed", extra={"fields": {"radio_id": ev.radio_id, "error": error, "retry_in": delay}})
            await self._store.aretry_later(ev.id, ev.token_id, time.time() + delay, error)
            blocked.add(ev.token_id)


async def post_json(client: AsyncPinnedClient, url: str, payload: dict[str, object]) -> str | None:
    """POST ``payload`` as JSON to ``url`` (its query string kept) through net/'s SSRF-safe transport;
    None on a 2xx answer, else why it failed (a redirect is a failure: it is not followed)."""
    body = httpx.Request("POST", "http://x/", json=payload).content
    try:
        resp = await client.post(url, body, {"Content-Type": "application/json"})
    except NetError as exc:
        return str(exc)
    return None if resp.is_success else f"HTTP {resp.status_code}"
