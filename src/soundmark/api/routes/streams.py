"""Streams feature: AudD's stream methods (setCallbackUrl, getCallbackUrl, addStream, setStreamUrl,
getStreams, deleteStream), ``GET /longpoll/``, ``GET /lastSong/getChannelById/`` (the recent results
audd-cli reads), and the monitor + callback delivery run in ``lifespan``.

Every parameter goes through one pydantic model per method (audd/typed.py): a malformed or huge
value is AudD's error 50 (golongpoll's ``{"error": ...}`` on ``/longpoll/``), never a 500.

Streams live in the store (streams/registry.py), so they survive restarts and may also be added with
``soundmark stream add`` while the server runs (it picks them up every ``stream_sync_seconds``).
Every database call of these routes and of the monitor is awaited on the server's read pool and
writer (``state.db``); answers are the response models of audd/models.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from soundmark.api.auth import authorize
from soundmark.api.params import ApiRequest
from soundmark.api.state import AppState, app_state
from soundmark.audd import typed
from soundmark.audd.errors import ApiError
from soundmark.audd.models import wire
from soundmark.catalog.models import Track
from soundmark.services.runtime import Role
from soundmark.services.streams import StreamAccount, StreamService, stream_entry
from soundmark.streams.callbacks import CallbackDeliverer, EventSink
from soundmark.streams.event_watch import EventWatcher
from soundmark.streams.leases import Node, StreamLeases
from soundmark.streams.longpoll import DEFAULT_TIMEOUT, MAX_TIMEOUT, LongpollHub
from soundmark.streams.monitor import MonitorConfig, StreamManager
from soundmark.streams.registry import RECENT_RESULTS, StreamStore

log = logging.getLogger("soundmark.streams")
router = APIRouter()
EVENT_POLL_SECONDS = 0.5  # SQLite: how soon an `api` node's longpoll sees an event another process wrote


def _streams(state: AppState) -> StreamStore:
    store: StreamStore = state.extras["streams.registry"]
    return store


def _service(state: AppState) -> StreamService:
    service: StreamService = state.extras["streams.service"]
    return service


async def _sync(state: AppState) -> None:
    """Start / stop monitoring at once when this node monitors; a node that does not (role
    ``api``) leaves it to the monitor node, which syncs every ``stream_sync_seconds``."""
    manager: StreamManager | None = state.extras.get("streams.manager")
    if manager is not None:
        await manager.sync()


async def _account(state: AppState, request: Request, api: ApiRequest) -> StreamAccount:
    token = api.get("api_token")
    info = await authorize(state, request, token, scope="streams", count=False)
    assert info is not None  # the streams scope always needs a token
    return StreamAccount.of(info.id, token)


# --- parameter models (one per method; audd/typed.py) ------------------------------------------
class TokenParams(typed.Params):
    api_token: typed.Text = ""


class UrlParams(TokenParams):
    url: typed.Text = ""


class StreamParams(TokenParams):
    radio_id: typed.Id


class StreamUrlParams(StreamParams):
    url: typed.Text = ""


class AddStreamParams(StreamUrlParams):
    callbacks: Literal["before"] | None = None

    @classmethod
    def from_request(cls, params: dict[str, str]) -> AddStreamParams:
        lowered = {k: (v.lower() if k == "callbacks" else v) for k, v in params.items()}
        return typed.parse(cls, lowered)


class LongpollParams(typed.Params):
    category: str = Field(min_length=1, max_length=1024)
    timeout: typed.Int = Field(DEFAULT_TIMEOUT, ge=1, le=MAX_TIMEOUT)
    since_time: typed.OptionalId = None


class ChannelParams(typed.Params):
    ch_id: str = Field(pattern=r"^-?[0-9A-Za-z]{1,64}$")


async def set_callback_url(state: AppState, request: Request, api: ApiRequest) -> object:
    p = typed.parse(UrlParams, api.params)
    account = await _account(state, request, api)
    await _service(state).set_callback_url(account, p.url)
    return None


async def get_callback_url(state: AppState, request: Request, api: ApiRequest) -> object:
    typed.parse(TokenParams, api.params)
    account = await _account(state, request, api)
    return await _service(state).callback_url(account)


async def add_stream(state: AppState, request: Request, api: ApiRequest) -> object:
    account = await _account(state, request, api)
    p = AddStreamParams.from_request(api.params)
    await _service(state).add_stream(account, p.radio_id, p.url, p.callbacks)
    await _sync(state)
    return None


async def set_stream_url(state: AppState, request: Request, api: ApiRequest) -> object:
    account = await _account(state, request, api)
    p = typed.parse(StreamUrlParams, api.params)
    await _service(state).set_stream_url(account, p.radio_id, p.url)
    await _sync(state)
    return None


async def delete_stream(state: AppState, request: Request, api: ApiRequest) -> object:
    account = await _account(state, request, api)
    radio_id = typed.parse(StreamParams, api.params).radio_id
    await _service(state).delete_stream(account, radio_id)
    await _sync(state)
    return None


async def get_streams(state: AppState, request: Request, api: ApiRequest) -> object:
    typed.parse(TokenParams, api.params)
    account = await _account(state, request, api)
    return [stream_entry(r) for r in await _service(state).streams(account)]


HANDLERS: dict[str, Callable[[AppState, Request, ApiRequest], Awaitable[object]]] = {
    "setCallbackUrl": set_callback_url,
    "getCallbackUrl": get_callback_url,
    "addStream": add_stream,
    "setStreamUrl": set_stream_url,
    "getStreams": get_streams,
    "deleteStream": delete_stream,
}


@router.get("/longpoll", include_in_schema=False)
@router.get("/longpoll/")
async def longpoll(request: Request) -> JSONResponse:
    """Stream events of one longpoll category (golongpoll semantics; no token needed)."""
    state = app_state(request)
    try:
        p = typed.parse(LongpollParams, dict(request.query_params))
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=400)
    hub: LongpollHub = state.extras["streams.hub"]
    return JSONResponse(wire(await hub.wait(p.category, p.timeout, p.since_time)))


@router.api_route("/lastSong/getChannelById", methods=["GET", "POST"], include_in_schema=False)
@router.get("/lastSong/getChannelById/")  # one route per method: each its own OpenAPI operation id
@router.post("/lastSong/getChannelById/")
async def get_channel_by_id(request: Request) -> JSONResponse:
    """A stream's recent results, as AudD's ``lastSong`` service answers them (``audd streams watch``
    and ``history`` read it): ``{"NumericalId", "StringId", "History": {"Elements": [...],
    "OldestElement": 0}}``, each element a song with ``radio_id``, ``timestamp`` and ``play_length``,
    oldest first. ``ch_id`` is ``-`` + the longpoll category; like longpoll it needs no token."""
    state = app_state(request)
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    headers = {"Access-Control-Allow-Origin": "*"}
    try:
        ch_id = typed.parse(ChannelParams, params).ch_id
    except ApiError as exc:
        return JSONResponse(exc.message, status_code=400, headers=headers)
    category = ch_id.removeprefix("-").lower()
    elements = await _streams(state).arecent_results(category, RECENT_RESULTS)
    if elements is None:
        return JSONResponse("not_found", status_code=404, headers=headers)
    body = {"NumericalId": ch_id, "StringId": category, "History": {"Elements": elements, "OldestElement": 0}}
    return JSONResponse(body, headers=headers)


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    """The stream store and longpoll hub on every node; the monitor and callback delivery only on
    a node whose role monitors (``monitor``, ``all``), with a node id for its stream leases and
    callback claims; on a node that serves the API but does not monitor (``api``), or on any
    API node over a PostgreSQL catalog (other monitor nodes), a watcher that wakes longpoll when
    another process writes an event."""
    s = state.settings
    store = await asyncio.to_thread(StreamStore, s.db, state.db)  # its writes go through the one writer
    hub = LongpollHub(store)
    state.extras.update({"streams.registry": store, "streams.hub": hub, "streams.service": StreamService(store, s)})
    tasks = []
    manager: StreamManager | None = None
    watcher = EventWatcher(s.db, hub.published)
    if Role.of(s).monitors:
        node = Node.this_process(s.role)  # its leases and callback claims (several monitor nodes)
        deliverer = CallbackDeliverer(store, s, node.id)

        def published() -> None:
            hub.published()
            deliverer.poke()

        base = s.public_url.rstrip("/") or f"http://{s.host}:{s.port}"

        async def track(track_id: int) -> Track | None:  # on the read pool, off the event loop
            found: Track | None = await state.db.aread(lambda c: c.get_track(track_id))
            return found

        async def duration(track_id: int) -> float | None:
            found = await track(track_id)
            return None if found is None else found.duration

        sink = EventSink(store, s, track, base, published)

        config = MonitorConfig.from_settings(s, state.store.params)
        leases = StreamLeases(state.db, node, fencing=watcher.shared)  # other monitors only share a PostgreSQL catalog
        manager = StreamManager(
            store, config, state.pool.recognize_window, duration, sink, health_db=state.db, leases=leases
        )
        state.extras.update({"streams.manager": manager, "streams.deliverer": deliverer})
        tasks += [
            asyncio.create_task(deliverer.run(), name="stream-callbacks"),
            asyncio.create_task(manager.run(s.stream_sync_seconds), name="stream-sync"),
        ]
    if Role.of(s).serves_api and (watcher.shared or not Role.of(s).monitors):  # events from other nodes
        tasks.append(asyncio.create_task(watcher.run(EVENT_POLL_SECONDS), name="stream-event-watch"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if manager is not None:
            await manager.close()
        store.close()
