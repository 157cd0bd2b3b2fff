"""Listening as a use case: blocks from a device in, what they play out — once, or song by song.

An ``Ear`` is fed the device's blocks and, when asked, recognises the last seconds it was fed:
``LocalEar`` (local.py) against a store on this machine, ``RemoteEar`` (remote.py) through a
server's WebSocket. ``listen_once`` asks every ``every`` seconds until a match or the time is up;
``listen_continuous`` asks every hop and hands the answers to the live-stream play tracker
(streams/tracker.py), which turns window matches into one start and one end per song played.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np

from soundmark.match.recognizer import Match
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.streams.tracker import Change, Play, SongTracker


@dataclass(frozen=True)
class Heard:
    """The answer about the last seconds fed to an ear."""

    matches: list[Match]  # best first; empty when the audio is not in the catalog (or is silence)
    seconds: float  # audio the answer is about
    silent: bool = False  # too quiet to be analysed (nothing was asked)


class Ear(Protocol):
    rate: int  # Hz of the samples it is fed (mono float32)

    def feed(self, samples: np.ndarray) -> None: ...

    def heard(self) -> Heard: ...


CONFIRM_SLACK = 1.5  # seconds: two answers name one play when their offsets advance with the audio this closely


def listen_once(
    blocks: Iterable[np.ndarray], ear: Ear, seconds: float, every: float = 1.0, first: float = 2.0
) -> Heard:
    """Feed ``blocks`` to ``ear`` and ask it after ``first`` seconds, then every ``every`` seconds,
    until it hears a match or ``seconds`` of audio were fed; the last answer (no match: empty).

    Asking many times is many chances for a chance match, so a match counts only when the next
    answer confirms it (the same track, its offset advanced with the audio, ``confirmed``); the
    last answer, when time is up, counts alone, as one API call would."""
    rate = ear.rate
    limit = max(1, round(seconds * rate))
    ask_at = min(limit, round(first * rate))
    step = max(1, round(every * rate))
    fed = 0
    last = Heard([], 0.0)
    pending: tuple[Heard, float] | None = None  # an unconfirmed match, and where its audio began (s)
    for block in blocks:
        block = block[: limit - fed]
        ear.feed(block)
        fed += len(block)
        if fed >= ask_at:
            last = ear.heard()
            began = fed / rate - last.seconds
            if last.matches:
                if fed >= limit or (pending is not None and confirmed(*pending, last, began)):
                    return last
                pending = (last, began)
            else:
                pending = None
            ask_at = min(limit, fed + step)
        if fed >= limit:
            break
    return last


def confirmed(first: Heard, first_began: float, then: Heard, then_began: float) -> bool:
    """Whether ``then`` names the play ``first`` named: the same best track, at an offset that
    moved on by the audio between the two answers' starts (within ``CONFIRM_SLACK``)."""
    a, b = first.matches[0], then.matches[0]
    if a.track.id != b.track.id:
        return False
    moved = (then_began - first_began) * b.time_rate
    return abs((b.offset_seconds - a.offset_seconds) - moved) <= CONFIRM_SLACK


def limited(blocks: Iterable[np.ndarray], samples: int) -> Iterator[np.ndarray]:
    """The first ``samples`` samples of ``blocks`` (the last block cut)."""
    left = samples
    for block in blocks:
        if left <= 0:
            return
        yield block[:left]
        left -= len(block)


@dataclass(frozen=True)
class SongEvent:
    """A song started (heard surely: the tracker announced it) or ended (another song, its
    catalog length over, or ``gap`` seconds without it, or the end of listening)."""

    kind: Literal["start", "end"]
    matches: list[Match]  # the best match heard of the song so far, then its alternatives
    start: float  # epoch second the song was first heard
    end: float  # epoch second it was last heard


def listen_continuous(
    blocks: Iterable[np.ndarray],
    ear: Ear,
    on_event: Callable[[SongEvent], None],
    *,
    window: float,
    hop: float,
    gap: float,
    clock: Callable[[], float] = time.time,
) -> None:
    """Feed ``blocks`` to ``ear``, ask it every ``hop`` seconds about the last ``window``, and
    report each song as it starts and ends; returns when ``blocks`` end. Whatever stops it (Ctrl-C
    included), the song playing then is reported as ended first."""
    rate = ear.rate
    hop_n = max(1, round(hop * rate))
    first_n = min(round(window * rate), 2 * hop_n)  # audio before the first answer (as the stream monitor)
    began = clock()
    tracker = SongTracker(gap, hop, floor=began)
    known: dict[int, Match] = {}  # track id → the last match of it: the track a play is presented with
    fed = since = 0

    def emit(changes: list[Change]) -> None:
        for change in changes:
            play = change.play
            if change.kind == "announce" or not play.announced:  # a play ending unannounced starts now
                play.announced = True
                on_event(SongEvent("start", _matches(play, known), play.start, play.end))
            if change.kind == "end":
                on_event(SongEvent("end", _matches(play, known), play.start, play.end))

    try:
        for block in blocks:
            ear.feed(block)
            fed += len(block)
            since += len(block)
            if since < hop_n or fed < first_n:
                continue
            since = 0
            heard = ear.heard()
            t1 = began + fed / rate
            t0 = t1 - heard.seconds
            if not heard.matches:
                emit(tracker.nothing(t0, t1))
                continue
            for m in heard.matches:
                known[m.track.id] = m
            top = heard.matches[0]
            duration = top.track.duration if top.track.duration > 0 else math.inf  # unknown: a server's answer
            emit(tracker.window(t0, t1, [worker_match(m) for m in heard.matches], duration))
    finally:
        emit(tracker.flush())


def worker_match(m: Match) -> WorkerMatch:
    """A match as the play tracker takes it."""
    return WorkerMatch.of(m)


def _matches(play: Play, known: dict[int, Match]) -> list[Match]:
    """The play's best match and alternatives as ``Match`` objects (with their tracks)."""
    out = []
    for w in [play.best, *play.alternatives]:
        m = known.get(w.track_id)
        if m is not None:
            out.append(replace(m, offset_seconds=w.offset_seconds, score=w.score,
                               time_rate=w.time_rate, freq_rate=w.freq_rate))  # fmt: skip
    return out
