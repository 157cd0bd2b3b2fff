"""``/streams`` (admin): the Stations page — every monitored stream with its health and the song
playing now, the last plays, live updates over Server-Sent Events (``/streams/events``), and
forms to add and remove a stream (``services/streams.py``: the same rules as AudD's addStream).

What the page shows comes from the store (the monitor may be another process): the health rows
the monitor writes (streams/health.py) and the airplay log. The event stream is bounded: at most
``MAX_EVENT_STREAMS`` open at once on a server process (more are answered 503), each reads the
view every ``POLL_SECONDS`` and sends it only when it changed, sends a heartbeat comment at least
every ``HEARTBEAT_SECONDS``, ends when its session does (logout, expiry, a revoked token), and
closes after ``MAX_EVENT_STREAM_SECONDS`` (the browser's EventSource then reconnects).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from soundmark.api.state import AppState, app_state
from soundmark.auth.sessions import SessionStore
from soundmark.services.errors import ServiceError
from soundmark.services.streams import RecentPlay, Station, StationsService, StationsView, StreamService
from soundmark.streams.monitor import StreamManager
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import ADMIN_SCOPE, SESSION_COOKIE, Visitor, admin_form, visitor

router = APIRouter(include_in_schema=False)
PATH = "/streams"
EVENTS_PATH = "/streams/events"
MAX_EVENT_STREAMS = 8  # open /streams/events connections per server process
POLL_SECONDS = 2.0  # how often an open event stream reads the view
HEARTBEAT_SECONDS = 15.0  # a comment at least this often keeps proxies from closing it
MAX_EVENT_STREAM_SECONDS = 1800.0  # then it closes; the browser reconnects (and is checked again)
RETRY_MS = 3000  # the browser's reconnect delay
STATE_LABELS = {
    "starting": "starting",
    "connected": "connected",
    "silence": "connected, silence",
    "down": "down",
    "stale": "no report from the monitor",
}


@dataclass
class EventStreamGate:
    """Counts the open event streams of this process (``install`` keeps one on the app)."""

    limit: int
    open: int = 0

    def enter(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def leave(self) -> None:
        self.open -= 1


def install(app: FastAPI) -> None:
    app.state.soundmark_stations = EventStreamGate(MAX_EVENT_STREAMS)
    app.include_router(router)


def _gate(request: Request) -> EventStreamGate:
    gate: EventStreamGate = request.app.state.soundmark_stations
    return gate


def _service(state: AppState) -> StationsService:
    streams: StreamService = state.extras["streams.service"]
    return StationsService(state.db, streams, state.settings)


def to_login() -> Response:
    return secure(RedirectResponse(f"/login?next={PATH}", status_code=303))


# --- presenting (the page and the event stream show the same fields) ---------------------------
def _time(t: float | None) -> str:
    return "" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _station(s: Station) -> dict[str, object]:
    h = s.health
    silence = ""
    if h is not None and h.connected and h.silent_seconds > 0:
        silence = f"{h.silent_seconds:.0f} s of silence"
    return {
        "stream_id": s.stream_id, "token_id": s.token_id, "owner": s.owner, "radio_id": s.radio_id, "url": s.url,
        "state": s.state, "state_label": STATE_LABELS[s.state], "since": _time(h.since if h else None),
        "last_audio": _time(h.last_audio_at if h else None), "silence": silence,
        "reconnects": h.reconnects if h else 0, "last_error": (h.last_error or "") if h else "",
        "error_at": _time(h.error_at if h else None), "now_title": s.now_title or "",
        "now_artist": s.now_artist or "", "now_since": _time(s.now_since), "message": s.status_message or "",
    }  # fmt: skip


def _play(p: RecentPlay) -> dict[str, object]:
    return {
        "id": p.id, "radio_id": p.radio_id, "token_id": p.token_id, "heard_at": _time(p.start), "title": p.title,
        "artist": p.artist, "play_length": "" if p.play_length is None else str(p.play_length),
        "score": "" if p.score is None else str(p.score),
    }  # fmt: skip


def present(view: StationsView) -> dict[str, object]:
    """The view as the page and ``/streams/events`` show it: text only, times in UTC."""
    return {
        "stations": [_station(s) for s in view.stations],
        "more_stations": view.more_stations,
        "plays": [_play(p) for p in view.plays],
    }


# --- the page ------------------------------------------------------------------------------------
async def _page(request: Request, who: Visitor, *, message: str = "", ok: str = "", status: int = 200) -> Response:
    assert who.session is not None
    service = _service(app_state(request))
    view = present(await service.view())
    return pages_of(request).render(
        request, "stations.html", who, status=status, view=view, message=message, ok=ok,
        needs_token=not await service.knows_account(who.session.token_id), events=EVENTS_PATH,
    )  # fmt: skip


@router.get(PATH)
async def stations_page(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login()
    done = request.query_params.get("done", "")
    ok = {"added": "Stream added: the monitor picks it up in a few seconds.", "removed": "Stream removed."}
    return await _page(request, who, ok=ok.get(done, ""))


async def _sync(state: AppState) -> None:
    """Start or stop monitoring at once where this process monitors (else the monitor node's
    next sync picks the change up)."""
    manager: StreamManager | None = state.extras.get("streams.manager")
    if manager is not None:
        await manager.sync()


@router.post(PATH)
async def add_stream(request: Request) -> Response:
    sent = await admin_form(request)
    if sent is None:
        return to_login()
    who, session, form = sent
    state = app_state(request)
    try:
        await _service(state).add(
            session.token_id, form.get("radio_id", ""), form.get("url", ""), token=form.get("token", ""),
            before=form.get("callbacks", "") == "before",
        )  # fmt: skip
    except ServiceError as exc:
        return await _page(request, who, message=f"Not added: {exc}", status=400)
    await _sync(state)
    return secure(RedirectResponse(f"{PATH}?done=added", status_code=303))


@router.post(f"{PATH}/remove")
async def remove_stream(request: Request) -> Response:
    sent = await admin_form(request)
    if sent is None:
        return to_login()
    who, _, form = sent
    state = app_state(request)
    token_id = form.get("token_id", "").strip()
    try:
        if not token_id.isdigit() or len(token_id) > 19:
            raise ServiceError(50, "the stream's token id must be a whole number.")
        await _service(state).remove(int(token_id), form.get("radio_id", ""))
    except ServiceError as exc:
        return await _page(request, who, message=f"Not removed: {exc}", status=400)
    await _sync(state)
    return secure(RedirectResponse(f"{PATH}?done=removed", status_code=303))


# --- live updates -----------------------------------------------------------------------------
def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


class EventStream(StreamingResponse):
    """``text/event-stream`` that gives its place in the gate back however it ends (the events
    sent, the browser gone, the server stopping), even when its body never started."""

    def __init__(self, content: AsyncIterator[str], gate: EventStreamGate):
        super().__init__(content, media_type="text/event-stream")
        self._gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._gate.leave()


@router.get(EVENTS_PATH)
async def stations_events(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return secure(PlainTextResponse("log in first", status_code=401), private=True)
    gate = _gate(request)
    if not gate.enter():
        busy = PlainTextResponse("too many live connections; try again later", status_code=503)
        busy.headers["Retry-After"] = "30"
        return secure(busy, private=True)
    state = app_state(request)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    service = _service(state)

    async def alive() -> bool:
        found = await state.db.aread(lambda c: SessionStore(c.conn).find(session_id, ADMIN_SCOPE))
        return found is not None

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        began = beat = time.monotonic()
        last = ""
        while time.monotonic() - began < MAX_EVENT_STREAM_SECONDS:
            if await request.is_disconnected():  # the browser went: give the place back now
                return
            if not await alive():
                yield _event("end", json.dumps({"reason": "the session ended: log in again"}))
                return
            body = json.dumps(present(await service.view()), ensure_ascii=False, separators=(",", ":"))
            if body != last:
                last, beat = body, time.monotonic()
                yield _event("stations", body)
            elif time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                yield ": heartbeat\n\n"
            await asyncio.sleep(POLL_SECONDS)

    response = EventStream(events(), gate)
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not hold the events back
    return secure(response, private=True)
