"""A bounded pool of worker processes doing the CPU work (decode, fingerprint, match).

The event loop only parses requests and writes answers; every recognition runs in a worker
process that holds its own open store (segments are memory-mapped, so the OS shares their pages
between workers). A semaphore bounds what may queue, so overload answers quickly instead of
piling up requests.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from soundmark.audio.decode import decode
from soundmark.errors import SoundmarkError, TooShortError
from soundmark.fingerprint.stream import fingerprint_source
from soundmark.fingerprint.windows import WindowPeaks
from soundmark.match.explain import Explanation, explain_samples
from soundmark.match.recognizer import Match, MatchSettings, Recognizer
from soundmark.proc import die_with_parent
from soundmark.store import Store, recorded_params

MIN_QUERY_SECONDS = 1.0
T = TypeVar("T")


@dataclass(frozen=True)
class WorkerMatch:
    track_id: int
    offset_seconds: float
    score: float
    time_rate: float
    freq_rate: float
    lead_seconds: float = 0.0  # where in the query the song begins (``Match.lead_seconds``)

    @staticmethod
    def of(m: Match) -> WorkerMatch:
        return WorkerMatch(m.track.id, m.offset_seconds, m.score, m.time_rate, m.freq_rate, m.lead_seconds)


@dataclass(frozen=True)
class Extracted:
    """A fingerprinted upload, ready to commit by the parent (the single writer)."""

    duration: float
    hashes: np.ndarray
    times: np.ndarray
    peaks: np.ndarray


class _Worker:
    """What one worker process holds: its store and recognizer (set up once per process)."""

    current: _Worker | None = None  # one per process: worker state cannot travel through pickling

    def __init__(self, db: str, min_score: float, min_votes: int):
        self.store = Store(db, recorded_params(db))
        self.recognizer = Recognizer(self.store, MatchSettings(min_score=min_score, min_votes=min_votes))
        self.recognizer.warm_up()  # before the first request, not in it


def _init(db: str, min_score: float, min_votes: int) -> None:
    _Worker.current = _Worker(db, min_score, min_votes)


def _query(w: _Worker, data: bytes, max_seconds: float) -> np.ndarray:
    """The samples of a query upload (its first ``max_seconds``); TooShortError under a second."""
    samples = decode(data, w.store.params.sample_rate, max_seconds=max_seconds)
    if len(samples) < MIN_QUERY_SECONDS * w.store.params.sample_rate:
        raise TooShortError(f"only {len(samples) / w.store.params.sample_rate:.2f} s of audio")
    return samples


def _recognize(data: bytes, max_seconds: float) -> list[WorkerMatch]:
    w = _Worker.current
    assert w is not None
    return [WorkerMatch.of(m) for m in w.recognizer.recognize(_query(w, data, max_seconds))]


def _explain(data: bytes, max_seconds: float, picture: str | None) -> tuple[Explanation, bytes | None]:
    """The evidence behind recognising ``data``, and its picture as ``picture`` (png, svg) if asked:
    both CPU work, done here rather than on the event loop."""
    w = _Worker.current
    assert w is not None
    e = explain_samples(w.recognizer, _query(w, data, max_seconds))
    if picture is None:
        return e, None
    from soundmark.render.explain import explain_picture  # matplotlib, only in workers that draw

    return e, explain_picture(e, picture)


def _recognize_samples(samples: np.ndarray) -> list[WorkerMatch]:
    w = _Worker.current
    assert w is not None
    return [WorkerMatch.of(m) for m in w.recognizer.recognize(samples)]


def _recognize_window(window: WindowPeaks) -> list[WorkerMatch]:
    w = _Worker.current
    assert w is not None
    return [WorkerMatch.of(m) for m in w.recognizer.recognize_print(window.query_print(w.store.params))]


def _extract(data: bytes, max_seconds: float) -> Extracted:
    w = _Worker.current
    assert w is not None
    # Streamed: a small file that decodes to hours costs its fingerprint, never its samples,
    # and one longer than ``max_seconds`` is refused while it decodes.
    fp, seconds = fingerprint_source(data, w.store.params, max_seconds)
    if len(fp.hashes) == 0:
        raise TooShortError("no fingerprint could be extracted (silence or too short)")
    return Extracted(seconds, fp.hashes, fp.times, fp.peaks)


class Overloaded(SoundmarkError):
    code = 611


class RecognitionPool:
    def __init__(self, db: Path, *, workers: int, max_inflight: int, min_score: float, min_votes: int):
        n = workers or os.cpu_count() or 1
        self._executor = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,  # no worker outlives a killed server
            initargs=(os.getpid(), _init, str(db), min_score, min_votes),
        )
        self._slots = asyncio.Semaphore(max_inflight)
        self.workers = n
        self.inflight = 0

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._slots.locked():
            raise Overloaded("too many requests in flight")
        async with self._slots:
            self.inflight += 1
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            finally:
                self.inflight -= 1

    async def recognize(self, data: bytes, max_seconds: float) -> list[WorkerMatch]:
        result: list[WorkerMatch] = await self._run(_recognize, data, max_seconds)
        return result

    async def explain(
        self, data: bytes, max_seconds: float, picture: str | None = None
    ) -> tuple[Explanation, bytes | None]:
        """Why ``data`` matched or not (match/explain.py), with its picture (png, svg) if asked."""
        result: tuple[Explanation, bytes | None] = await self._run(_explain, data, max_seconds, picture)
        return result

    async def recognize_samples(self, samples: np.ndarray) -> list[WorkerMatch]:
        """Recognise already-decoded mono float32 samples at the engine rate."""
        result: list[WorkerMatch] = await self._run(_recognize_samples, samples)
        return result

    async def recognize_window(self, window: WindowPeaks) -> list[WorkerMatch]:
        """Recognise a live stream's window from its peaks (made in this process by the stream's
        QueryStream; the worker hashes them and matches: no audio travels)."""
        result: list[WorkerMatch] = await self._run(_recognize_window, window)
        return result

    async def extract(self, data: bytes, max_seconds: float) -> Extracted:
        result: Extracted = await self._run(_extract, data, max_seconds)
        return result

    def warm_up(self) -> None:
        """Start every worker now rather than on the first requests."""
        for f in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            f.result()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
