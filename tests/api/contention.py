"""Load for "the API while ``soundmark add`` writes to the same store": generated tracks for a real
add run, and clients that keep asking a live server (/healthz, an authenticated recognize,
/metrics) and record how each answer came and how long it took. Used by
tests/api/test_add_while_serving.py and benchmarks/write_contention.py."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from soundmark.demo import compose_piece, write_wav

RATE = 8000  # the engine's rate: nothing to resample
BASE_SECONDS = 150.0


def write_tracks(folder: Path, *, bases: int, per_base: int, seed: int = 7000) -> float:
    """Write ``bases * per_base`` distinct WAV tracks into ``folder``; returns their seconds.

    Composing is the slow part, so each composed piece gives ``per_base`` tracks: its openings
    of lengths 5 s apart (past the 2 % duration tolerance of add's duplicate check, so each is
    added as a track of its own) — enough audio for an add run of tens of seconds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for b in range(bases):
        x = compose_piece(seed + b, BASE_SECONDS, RATE)
        for k in range(per_base):
            seconds = BASE_SECONDS - 5.0 * k
            write_wav(folder / f"gen-{b:02d}-{k:02d}.wav", x[: int(seconds * RATE)], RATE)
            total += seconds
    return total


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def start_add(db: Path, folder: Path, log: Path, *, batch: int) -> subprocess.Popen[bytes]:
    """``soundmark add`` in a process of its own (one extraction worker: the machine is shared)."""
    cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(db), "-j", "1", "--batch", str(batch), "-q",
           str(folder)]  # fmt: skip
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)


_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
conn.execute("BEGIN IMMEDIATE")
conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('contention', 'held')")
print("held", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the catalog's write lock for ``seconds`` (as an add's commit or
    compaction does on a large catalog or a slow disk); returns once the lock is held."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(db / "catalog.sqlite"), str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@dataclass
class Answer:
    kind: str  # healthz | recognize | metrics | quota
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class Recorder:
    answers: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def of(self, kind: str) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.kind == kind]


def _timed(kind: str, send: Callable[[], httpx.Response], check: Callable[[httpx.Response], str]) -> Answer:
    start = time.perf_counter()
    try:
        response = send()
    except httpx.HTTPError as exc:
        return Answer(kind, time.perf_counter() - start, False, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    problem = check(response)
    return Answer(kind, seconds, not problem, problem)


def _healthz_ok(r: httpx.Response) -> str:
    if r.status_code != 200 or r.json().get("status") != "ok":
        return f"healthz {r.status_code}: {r.text[:200]}"
    return ""


def _metrics_ok(r: httpx.Response) -> str:
    if r.status_code != 200 or "soundmark_requests" not in r.text:
        return f"metrics {r.status_code}: {r.text[:200]}"
    return ""


def recognized(title: str) -> Callable[[httpx.Response], str]:
    def check(r: httpx.Response) -> str:
        body = r.json()
        result = body.get("result") or {}
        if r.status_code != 200 or body.get("status") != "success" or result.get("title") != title:
            return f"recognize {r.status_code}: {r.text[:300]}"
        return ""

    return check


def probe_loop(client: httpx.Client, url: str, rec: Recorder, stop: threading.Event) -> None:
    """/healthz and /metrics, one after the other, until ``stop``."""
    while not stop.is_set():
        rec.add(_timed("healthz", lambda: client.get(f"{url}/healthz"), _healthz_ok))
        rec.add(_timed("metrics", lambda: client.get(f"{url}/metrics"), _metrics_ok))


def recognize_loop(
    client: httpx.Client, url: str, token: str, clip: bytes, title: str, rec: Recorder, stop: threading.Event
) -> None:
    """An authenticated recognize of ``clip`` (expected: ``title``), again and again until ``stop``."""
    check = recognized(title)
    while not stop.is_set():
        rec.add(
            _timed(
                "recognize",
                lambda: client.post(url + "/", data={"api_token": token}, files={"file": ("clip.wav", clip)}),
                check,
            )
        )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")
