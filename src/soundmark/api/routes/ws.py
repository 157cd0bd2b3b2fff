"""The WebSocket variant: binary audio frames in, one recognize answer per frame out, in order.

Frames are recognised concurrently (up to a per-connection bound) but answered in the order they
arrived; each answer carries ``request_id`` — the frame's counter, from 1 — so a client that
sends without waiting can match replies to frames.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from soundmark.api.auth import authorize
from soundmark.api.errors import api_error
from soundmark.api.origin import operator
from soundmark.api.recognition import RecognizeParams, present, recognition_service
from soundmark.api.state import AppState, app_state
from soundmark.audd.errors import ApiError, RequestEcho, error_body
from soundmark.audd.typed import parse
from soundmark.errors import SoundmarkError

router = APIRouter()
PER_CONNECTION = 32  # frames in flight per connection before reading pauses


async def _answer_frame(state: AppState, ws: WebSocket, data: bytes, params: dict[str, str]) -> dict[str, object]:
    echo = RequestEcho("recognize", "WS", params)
    try:
        if len(data) > state.settings.max_upload_bytes:
            raise ApiError(400, f"the frame is too big: {state.settings.max_upload_bytes} bytes is the maximum.")
        await authorize(state, ws, params.get("api_token", "").strip(), scope="recognize", allow_demo=True)
        p = parse(RecognizeParams, params)
        try:
            found = await recognition_service(state).recognize(data, p.options)
        except SoundmarkError as exc:
            raise api_error(exc) from exc
        return {"status": "success", "result": present(found, p, ws, state.settings)}
    except ApiError as exc:
        return error_body(exc.code, exc.message, echo, operator=operator(ws, state.settings))


@router.websocket("/ws/")
@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    state = app_state(ws)
    params = dict(ws.query_params)
    await ws.accept()
    token = params.get("api_token", "").strip()
    if token:
        try:
            await authorize(state, ws, token, scope="recognize", count=False, allow_demo=True)
        except ApiError as exc:
            echo = RequestEcho("recognize", "WS", params)
            await ws.send_json(error_body(exc.code, exc.message, echo, operator=operator(ws, state.settings)))
            await ws.close(code=1008)
            return
    pending: asyncio.Queue[tuple[int, asyncio.Task[dict[str, object]]] | None] = asyncio.Queue(PER_CONNECTION)

    async def sender() -> None:
        while (item := await pending.get()) is not None:
            counter, task = item
            body = await task
            await ws.send_json({**body, "request_id": counter})

    send_task = asyncio.create_task(sender())
    counter = 0
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            if data is None:
                text = message.get("text") or ""
                data = text.encode() if text else b""
            counter += 1
            await pending.put((counter, asyncio.create_task(_answer_frame(state, ws, data, params))))
        await pending.put(None)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await send_task
    except WebSocketDisconnect:
        pass
    finally:
        send_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await send_task
