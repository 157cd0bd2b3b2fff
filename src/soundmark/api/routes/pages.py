"""Song pages (the targets of ``song_link``) and operational endpoints."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from soundmark.api.origin import base_url
from soundmark.api.song_page import render_not_found, render_song_page
from soundmark.api.state import app_state

router = APIRouter()


@router.get("/song/{track_id}", response_class=HTMLResponse, summary="the song page a result's song_link points to")
async def song_page(request: Request, track_id: str) -> HTMLResponse:
    state = app_state(request)
    valid = track_id.isascii() and track_id.isdigit() and len(track_id) <= 18  # an SQLite integer
    track = await state.db.aread(lambda catalog: catalog.get_track(int(track_id))) if valid else None
    if track is None:
        return HTMLResponse(render_not_found(track_id), status_code=404)
    return HTMLResponse(render_song_page(track, base_url(request, state.settings.public_url)))


@router.get("/healthz", summary="liveness and catalog size")
async def healthz(request: Request) -> JSONResponse:
    state = app_state(request)
    await asyncio.to_thread(state.store.refresh)  # cheap (PRAGMA data_version) unless segments were committed
    tracks, hours = await state.db.aread(lambda catalog: catalog.totals())  # off the event loop
    return JSONResponse({"status": "ok", "tracks": tracks, "hours": round(hours, 3), "workers": state.pool.workers})


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    state = app_state(request)
    state.metrics.inflight.set(state.pool.inflight)
    tracks, _ = await state.db.aread(lambda catalog: catalog.totals())  # off the event loop
    state.metrics.tracks.set(tracks)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
