"""The remote ear: the last seconds heard, recognised by a soundmark server through its WebSocket.

The endpoint ``/ws/`` (api/routes/ws.py) takes binary frames of audio and answers each with one
AudD ``recognize`` answer. Each question is a WAV of the last ``window_seconds`` (16-bit PCM, mono,
``WIRE_RATE``), sent with ``all=true`` so the answer carries every match, best first. Its song
objects become ``Match`` objects again — metadata, timecode offset, score, speed and pitch as the
server computed them, the track id read off ``song_link`` (``/song/<id>``; 0 when there is none) —
so both ears' answers are presented by the same code.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import wave
from collections import deque
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np

from soundmark.catalog.models import Track, TrackMeta
from soundmark.listen.errors import ServerError
from soundmark.listen.session import Heard
from soundmark.match.recognizer import Match
from soundmark.streams.monitor import SILENCE_RMS

log = logging.getLogger("soundmark.listen")

WIRE_RATE = 16000  # Hz sent to the server: twice the engine's 8 kHz, whatever it resamples to
ANSWER_TIMEOUT = 60.0  # seconds a server may take to answer one window
FATAL_CODES = range(900, 1000)  # token refused, quota spent, no access: asking again cannot help
_SONG_ID = re.compile(r"/song/(\d+)/?$")


def ws_url(server: str, token: str | None) -> str:
    """The WebSocket address of ``server`` (http(s)://host[:port][/prefix] or ws(s)://...)."""
    parts = urlsplit(server.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ServerError(f"not a server address: {server!r} (give e.g. http://127.0.0.1:8080)")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    query = {"all": "true", **({"api_token": token} if token else {})}
    return urlunsplit((scheme, parts.netloc, path + "/", urlencode(query), ""))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono float32 samples as a 16-bit PCM WAV file (clipped to full scale)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def song_match(song: dict[str, Any]) -> Match:
    """A song object of a recognize answer as a ``Match`` (unknown fields ``None``, as locally)."""

    def text(key: str) -> str | None:
        value = song.get(key)
        return str(value) if value not in (None, "") else None

    link = _SONG_ID.search(str(song.get("song_link") or ""))
    audio_id = song.get("audio_id")
    meta = TrackMeta(title=text("title"), artist=text("artist"), album=text("album"),
                     release_date=text("release_date"), label=text("label"), isrc=text("isrc"), upc=text("upc"),
                     audio_id=int(audio_id) if audio_id is not None else None)  # fmt: skip
    track = Track(id=int(link.group(1)) if link else 0, meta=meta, duration=0.0)  # duration: not in the answer
    offset = song.get("offset")
    return Match(track=track, offset_seconds=float(offset) if offset is not None else _seconds(song.get("timecode")),
                 score=float(song.get("score") or 0.0), votes=0, time_rate=float(song.get("speed", 1.0)),
                 freq_rate=float(song.get("pitch", 1.0)))  # fmt: skip


def _seconds(timecode: object) -> float:
    """``MM:SS`` or ``HH:MM:SS`` in seconds (0 when absent)."""
    total = 0.0
    for part in str(timecode or "0").split(":"):
        total = total * 60 + float(part or 0)
    return total


class RemoteEar:
    """Ask a server about the last ``window_seconds`` fed (mono float32 at ``WIRE_RATE``).

    Use it as a context manager: the WebSocket is opened on entry and closed on exit."""

    rate = WIRE_RATE

    def __init__(self, server: str, token: str | None, window_seconds: float, timeout: float = ANSWER_TIMEOUT):
        self.url = ws_url(server, token)
        self._shown = self.url.split("?")[0]  # the address without the token, for messages
        self._keep = max(1, round(window_seconds * self.rate))
        self._blocks: deque[np.ndarray] = deque()
        self._held = 0
        self._timeout = timeout
        self._ws: Any = None

    def __enter__(self) -> RemoteEar:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        try:
            self._ws = connect(self.url, open_timeout=20, close_timeout=5, max_size=2**24)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            raise ServerError(f"cannot reach the server's WebSocket {self._shown}: {exc}") from exc
        return self

    def __exit__(self, *exc: object) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()

    def feed(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._blocks.append(x)
        self._held += len(x)
        while self._held - len(self._blocks[0]) >= self._keep:
            self._held -= len(self._blocks.popleft())

    def heard(self) -> Heard:
        x = np.concatenate(list(self._blocks))[-self._keep :] if self._blocks else np.zeros(0, np.float32)
        seconds = len(x) / self.rate
        if not len(x) or float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) < SILENCE_RMS:
            return Heard([], seconds, silent=True)
        answer = self._ask(wav_bytes(x, self.rate))
        if answer.get("status") != "success":
            error = answer.get("error") or {}
            code, message = int(error.get("error_code", 0)), str(error.get("error_message", answer))
            if code in FATAL_CODES:
                raise ServerError(f"the server refused: {message} (code {code})")
            log.warning("the server could not recognise a window: %s (code %s)", message, code)
            return Heard([], seconds)
        result = answer.get("result")
        songs = result if isinstance(result, list) else [result] if isinstance(result, dict) else []
        return Heard([song_match(s) for s in songs], seconds)

    def _ask(self, frame: bytes) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        if self._ws is None:
            raise ServerError("the WebSocket is not open")
        with contextlib.suppress(ConnectionClosed):  # a refusal (bad token) came before the close: read it
            self._ws.send(frame)
        try:
            reply = self._ws.recv(timeout=self._timeout)
        except TimeoutError:
            raise ServerError(f"the server did not answer within {self._timeout:g} s") from None
        except ConnectionClosed as exc:
            raise ServerError(f"the server closed the WebSocket ({exc})") from None
        try:
            body = json.loads(reply)
        except ValueError:
            raise ServerError(f"the server's answer is not JSON: {str(reply)[:200]!r}") from None
        if not isinstance(body, dict):
            raise ServerError(f"unexpected answer from the server: {str(body)[:200]}")
        return body
