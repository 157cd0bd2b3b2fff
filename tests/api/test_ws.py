"""The WebSocket variant (/ws/): pipelined binary frames, answers in order, token errors, disconnects."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from pathlib import Path

import httpx
import pytest
from live_server import Server
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from soundmark.demo import compose_piece, write_wav
from support import PIECE_RATE, Piece

ENVELOPE_KEYS = {"status", "error", "request_params", "request_api_method", "request_http_method",
                 "see api documentation", "contact us"}  # fmt: skip


def wav(samples: object, tmp: Path, name: str) -> bytes:
    path = tmp / name
    write_wav(path, samples, PIECE_RATE)  # type: ignore[arg-type]
    return path.read_bytes()


def ws_url(server: Server, query: str = "") -> str:
    return server.url.replace("http://", "ws://") + "/ws/" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token("ws-tests")


@pytest.fixture(scope="module")
def frames(pieces: list[Piece], tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, str | None | int]]:
    """20 frames: (data, expected) with expected a title, None (no match) or 500 (an error)."""
    tmp = tmp_path_factory.mktemp("ws")
    out: list[tuple[bytes, str | None | int]] = []
    for i in range(17):
        piece = pieces[i % len(pieces)]
        start = 3.0 + (i * 7) % 30
        a = int(start * PIECE_RATE)
        out.append((wav(piece.samples[a : a + 5 * PIECE_RATE], tmp, f"k{i}.wav"), piece.title))
    out.insert(5, (wav(compose_piece(9001, 5.0, PIECE_RATE), tmp, "u1.wav"), None))
    out.insert(12, (b"this is not audio at all " * 40, 500))
    out.insert(16, (wav(compose_piece(9002, 5.0, PIECE_RATE), tmp, "u2.wav"), None))
    assert len(out) == 20
    return out


def test_pipelined_frames_answered_in_order(
    server: Server, token: str, frames: list[tuple[bytes, str | None | int]]
) -> None:
    with connect(ws_url(server, f"api_token={token}"), open_timeout=30, close_timeout=10) as ws:
        for data, _ in frames:  # all of them, without waiting for any answer
            ws.send(data)
        replies = [json.loads(ws.recv(timeout=60)) for _ in frames]
    assert [r["request_id"] for r in replies] == list(range(1, 21))
    for n, ((_, expected), reply) in enumerate(zip(frames, replies, strict=True), start=1):
        if expected == 500:
            assert reply["status"] == "error", (n, reply)
            assert set(reply) - {"request_id"} == ENVELOPE_KEYS
            assert reply["error"]["error_code"] == 500
            assert reply["request_http_method"] == "WS" and reply["request_api_method"] == "recognize"
            assert reply["request_params"]["api_token"] == f"{token[0]}***{token[-1]}"
        elif expected is None:
            assert reply == {"status": "success", "result": None, "request_id": n}
        else:
            assert reply["status"] == "success", (n, reply)
            assert reply["result"]["title"] == expected, (n, reply)
            assert reply["result"]["artist"] == "Test Band"
            assert reply["result"]["song_link"].startswith(server.url + "/song/")  # http, not ws://
    page = httpx.get(replies[0]["result"]["song_link"], timeout=30)
    assert page.status_code == 200 and frames[0][1] in page.text


def test_text_frame_is_an_error_answer(server: Server, token: str) -> None:
    with connect(ws_url(server, f"api_token={token}"), open_timeout=30) as ws:
        ws.send("https://example.org/not-fetched.mp3")
        reply = json.loads(ws.recv(timeout=30))
    assert reply["request_id"] == 1 and reply["status"] == "error"
    assert reply["error"]["error_code"] in (300, 500)


def test_wrong_token_gets_900_and_close(server: Server, frames: list[tuple[bytes, str | None | int]]) -> None:
    wrong = "not-a-valid-token-at-all"
    with connect(ws_url(server, f"api_token={wrong}"), open_timeout=30) as ws:
        reply = json.loads(ws.recv(timeout=30))
        assert reply["status"] == "error" and reply["error"]["error_code"] == 900
        assert set(reply) == ENVELOPE_KEYS
        assert reply["request_params"]["api_token"] == "n***l"
        with pytest.raises(ConnectionClosed):
            ws.send(frames[0][0])
            ws.recv(timeout=30)
    assert ws.close_code == 1008


def _raw_ws_handshake(server: Server, query: str) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/?{query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _binary_frame_header(length: int) -> bytes:
    # FIN + binary opcode; masked (client → server) with a 64-bit length.
    return bytes([0x82, 0x80 | 127]) + struct.pack(">Q", length) + os.urandom(4)


def test_client_disconnecting_mid_stream(
    server: Server, token: str, frames: list[tuple[bytes, str | None | int]]
) -> None:
    # 1. A client that sends frames and leaves at once (clean close) while they are recognised.
    with connect(ws_url(server, f"api_token={token}"), open_timeout=30) as ws:
        for data, _ in frames[:8]:
            ws.send(data)
    # 2. A client that vanishes in the middle of a frame (no close handshake).
    sock = _raw_ws_handshake(server, f"api_token={token}")
    try:
        sock.sendall(_binary_frame_header(200_000) + os.urandom(1000))
    finally:
        sock.close()
    # 3. One that sends whole frames, then drops the TCP connection before any answer.
    sock = _raw_ws_handshake(server, f"api_token={token}")
    try:
        data = frames[0][0]
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        frame = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", len(data)) + mask + masked
        sock.sendall(frame * 3)
    finally:
        sock.close()

    health = httpx.get(server.url + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # The server still answers WebSocket clients.
    with connect(ws_url(server, f"api_token={token}"), open_timeout=30) as ws:
        ws.send(frames[1][0])
        reply = json.loads(ws.recv(timeout=60))
    assert reply["request_id"] == 1 and reply["result"]["title"] == frames[1][1]
    log = server.log_text()
    assert "Traceback" not in log
    assert token not in log
