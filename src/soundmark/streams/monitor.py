"""Monitor live streams: one asyncio task per stream, reading it in a thread, recognising a sliding
window through the worker pool and reporting each song played once (see tracker.py).

The reader thread feeds every block to the worker's ``QueryStream`` (fingerprint/query_stream.py):
each sample is analysed once, and every hop the thread cuts the peaks of the last window, which
the task sends to the pool to be hashed and matched — the audio itself never leaves the thread.

A worker reconnects with exponential backoff and reports an outage once (650), the stream
coming back (0), and long silence (651). ``StreamManager`` keeps one worker per stream row of
the store, picking up streams added, changed or removed elsewhere (the CLI) on every ``sync``.

With ``StreamLeases`` (leases.py: several monitor nodes over one catalog) a manager runs only the
streams whose lease it holds: every ``sync`` renews and claims, stops the workers of streams it
no longer holds, and when it cannot renew at all (over a shared catalog) it stops every worker
before its own lease runs out. A worker that starts on a stream first reads the last song
reported on it (by whichever node) so that a takeover does not report the song on air twice
(tracker.py ``reported``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, cast

from soundmark.catalog.writer import Database
from soundmark.errors import SoundmarkError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.query_stream import QueryStream, StreamWindow
from soundmark.fingerprint.windows import WindowPeaks
from soundmark.net.addresses import AddressPolicy
from soundmark.services.recognition_pool import Overloaded, WorkerMatch
from soundmark.settings import Settings
from soundmark.streams.health import StreamHealth
from soundmark.streams.leases import RENEW_SECONDS, StreamLeases
from soundmark.streams.registry import StreamRow, StreamStore
from soundmark.streams.source import SourceOptions, StreamError, read_stream
from soundmark.streams.tracker import Change, Play, SongTracker
from soundmark.streams.zone import parse_timestamp

log = logging.getLogger("soundmark.streams")

SILENCE_RMS = 10 ** (-60 / 20)  # a window quieter than -60 dBFS is silence (not analysed)
CODE_OK, CODE_NO_CONNECTION, CODE_NOISE = 0, 650, 651
MSG_CANT_CONNECT = "Recognition failed: can't connect to the audiostream"
MSG_STOPPED = "Recognition failed: the audiostream stopped"
MSG_NOISE = "Recognition failed: only noise or silence, no music detected"
MSG_RESUMED = "Recognition resumed: the audiostream is running"

Recognize = Callable[[WindowPeaks], Awaitable[list[WorkerMatch]]]
Duration = Callable[[int], Awaitable[float | None]]  # a track's length (s), read off the event loop
Reported = tuple[int, float, float]  # the last song reported on a stream: (track id, start, duration)
Prior = Callable[[], Awaitable[Reported | None]]


@dataclass(frozen=True)
class MonitorConfig:
    """What a stream worker needs, all of it from ``Settings`` (``from_settings``) and the store's
    fingerprint parameters: no defaults of its own to contradict the settings."""

    params: FingerprintParams  # the store's: query prints are made with them
    window: float  # seconds recognised at once (stream_window_seconds)
    hop: float  # seconds between two recognitions (stream_hop_seconds)
    gap: float  # stream_song_gap_seconds
    silence: float  # stream_silence_seconds
    read_timeout: float  # stream_read_timeout
    reconnect_max: float  # stream_reconnect_max_seconds
    policy: AddressPolicy  # the addresses a source may reach (allow_private_urls, allowed_networks)
    timezone: str  # callback_timezone: how the stored results' timestamps read back

    @property
    def sample_rate(self) -> int:
        return self.params.sample_rate

    @classmethod
    def from_settings(cls, s: Settings, params: FingerprintParams) -> MonitorConfig:
        return cls(params, s.stream_window_seconds, s.stream_hop_seconds, s.stream_song_gap_seconds,
                   s.stream_silence_seconds, s.stream_read_timeout, s.stream_reconnect_max_seconds,
                   AddressPolicy.from_settings(s), s.callback_timezone)  # fmt: skip


@dataclass(frozen=True)
class StreamJob:
    key: int  # the stream's row id (or any id for direct monitoring)
    radio_id: int
    url: str
    before: bool = False  # callbacks=before: report songs as they start
    token_id: int = 0
    category: str = ""


class Sink(Protocol):
    async def song(self, job: StreamJob, play: Play, final: bool) -> None: ...

    async def notify(self, job: StreamJob, code: int, message: str, running: bool) -> None: ...

    async def status(self, job: StreamJob, running: bool) -> None: ...


_END = object()
MIN_SESSION = 5.0  # seconds: a connection that ends sooner counts as failed (backoff applies)
# A sync that takes longer is given up (a hung catalog): the leases are then checked (``fence``).
SYNC_TIMEOUT = 2 * RENEW_SECONDS


class StreamWorker:
    def __init__(
        self, job: StreamJob, config: MonitorConfig, recognize: Recognize, duration: Duration, sink: Sink,
        health: StreamHealth | None = None, prior: Prior | None = None,
    ):  # fmt: skip
        self.job, self.config, self._recognize, self._duration, self._sink = job, config, recognize, duration, sink
        self._prior = prior  # the last song reported on the stream before this worker (None: not asked)
        self.health = health or StreamHealth(job.key)  # what the Stations page shows (streams/health.py)
        self._stop = threading.Event()  # seen by the reader thread
        self._abandoned = False  # the lease was lost: nothing more is reported
        self._astop = asyncio.Event()  # seen by the task while it waits to reconnect
        self._reported_down = False  # an outage was notified; the next connection notifies recovery
        self._was_connected = False
        self.tracker = SongTracker(config.gap, config.hop, floor=time.time())
        self.running = False
        self.windows = 0  # analysed windows (for benchmarks)
        self.lag = 0.0  # seconds the analysis runs behind the stream
        self.stage = QueryStream(config.params, config.window, config.hop)  # used by the reader thread only

    def stop(self) -> None:
        self._stop.set()
        self._astop.set()

    def abandon(self) -> None:
        """Stop without reporting the song playing now: the stream's lease went to another node,
        which reports it (its tracker hears the rest of it)."""
        self._abandoned = True
        self.stop()

    async def run(self) -> None:
        failures = 0
        self.health.started()
        await self._seed()
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                connected, reason = await self._session()
                await self._emit(self.tracker.flush())
                if not self._stop.is_set():
                    self.health.disconnected(reason)
                if self._stop.is_set():
                    break
                if connected and time.monotonic() - began > MIN_SESSION:
                    failures = 0
                    continue  # reconnect at once after a stream that was up; report only if that fails
                failures += 1
                if not connected and not self._reported_down:
                    self._reported_down = True
                    self.running = False
                    msg = MSG_STOPPED if self._was_connected else MSG_CANT_CONNECT
                    log.info("stream down", extra={"fields": {"radio_id": self.job.radio_id, "reason": reason}})
                    await self._sink.notify(self.job, CODE_NO_CONNECTION, msg, False)
                delay = min(self.config.reconnect_max, 2.0 ** (failures - 1))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._astop.wait(), delay)
        finally:
            await self._emit(self.tracker.flush())
            await self.health.close(write=not self._abandoned)

    async def _seed(self) -> None:
        """Tell the fresh tracker the last song reported on this stream (by this node before a
        restart, or by the node that held the stream before), so its play is not reported again."""
        if self._prior is None:
            return
        try:
            found = await self._prior()
        except Exception as exc:  # a catalog hiccup: monitor anyway (a duplicate is possible)
            log.warning("last stream result not read", extra={"fields": {"radio_id": self.job.radio_id,
                                                                         "error": str(exc)}})  # fmt: skip
            return
        if found is not None:
            self.tracker.reported(*found)

    async def _session(self) -> tuple[bool, str]:
        """Read the stream until it ends or fails: (audio was received, why it ended)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cfg = self.config
        opts = SourceOptions(cfg.sample_rate, connect_timeout=10.0, read_timeout=cfg.read_timeout, policy=cfg.policy)
        win_n, hop_n = int(cfg.window * cfg.sample_rate), int(cfg.hop * cfg.sample_rate)
        first_n = min(win_n, 2 * hop_n)  # audio needed before the first window

        def pump() -> None:
            stage, since = self.stage, 0
            stage.reset()
            try:
                for samples, received in read_stream(self.job.url, opts, self._stop):
                    stage.feed(samples)  # the FFTs and peak picking run here, off the event loop
                    since += len(samples)
                    cut = None
                    if since >= hop_n and stage.samples >= first_n:
                        since, cut = 0, stage.window()
                    loop.call_soon_threadsafe(queue.put_nowait, (len(samples), received, cut))
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except Exception as exc:  # handed to the task: any failure ends the session
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        thread = threading.Thread(target=pump, name=f"stream-{self.job.radio_id}", daemon=True)
        thread.start()
        return await self._consume(queue)

    async def _consume(self, queue: asyncio.Queue[object]) -> tuple[bool, str]:
        cfg, rate = self.config, self.config.sample_rate
        win_n, hop_n = int(cfg.window * rate), int(cfg.hop * rate)
        total, since, anchor, last_t = 0, 0, 0.0, 0.0
        connected, silent_for, noise_reported = False, 0.0, False
        while True:
            item = await queue.get()
            if item is _END:
                return connected, "the stream ended"
            if isinstance(item, BaseException):
                reason = str(item) if isinstance(item, SoundmarkError) else f"{type(item).__name__}: {item}"
                if not isinstance(item, (StreamError, SoundmarkError)):
                    log.warning(
                        "stream reader failed", extra={"fields": {"radio_id": self.job.radio_id, "error": reason}}
                    )
                return connected, reason
            # Neither _END nor an exception: a block read (its length, when it arrived) and, every
            # hop, the peaks of the window ending with it (see pump in _session).
            n, received, cut = cast(tuple[int, float, StreamWindow | None], item)
            if not connected:
                connected = True
                await self._connected()
            total += n
            self.health.audio(received)
            # The clock of the stream: the earliest (received − position) seen, relaxed slowly so a
            # sender slower than real time does not drift away (bursts on connect are backdated).
            candidate = received - total / rate
            anchor = candidate if total == n else min(anchor + 0.002 * (received - last_t), candidate)
            last_t = received
            since += n
            if cut is None:
                continue
            behind = queue.qsize() > 2
            stride = win_n if behind else hop_n
            if since < stride:
                continue
            since = 0
            t1 = anchor + cut.end_sample / rate
            t0 = t1 - cut.seconds
            self.lag = max(0.0, time.time() - t1)
            if cut.rms < SILENCE_RMS:
                silent_for += cut.seconds if not silent_for else stride / rate
                await self._emit(self.tracker.nothing(t0, t1))
                if silent_for >= cfg.silence and not noise_reported:
                    noise_reported = True
                    await self._sink.notify(self.job, CODE_NOISE, MSG_NOISE, True)
                self.health.silent(silent_for, noise_reported)
                continue
            silent_for = 0.0
            self.health.silent(0.0, False)
            if noise_reported:
                noise_reported = False
                await self._sink.notify(self.job, CODE_OK, MSG_RESUMED, True)
            await self._analyse(cut.query, t0, t1)

    async def _connected(self) -> None:
        if self._reported_down:
            self._reported_down = False
            await self._sink.notify(self.job, CODE_OK, MSG_RESUMED, True)
        self.running = True
        self._was_connected = True
        self.health.connected()
        await self._sink.status(self.job, True)

    async def _analyse(self, window: WindowPeaks, t0: float, t1: float) -> None:
        try:
            matches = await self._recognize(window)
        except Overloaded:
            log.warning("recognition overloaded; window skipped", extra={"fields": {"radio_id": self.job.radio_id}})
            return
        except SoundmarkError:
            return
        self.windows += 1
        duration = await self._duration(matches[0].track_id) if matches else None
        if matches and duration is None:  # removed from the catalog meanwhile
            matches = []
        await self._emit(self.tracker.window(t0, t1, matches, duration or 0.0))

    async def _emit(self, changes: list[Change]) -> None:
        if self._abandoned:
            return
        for change in changes:
            play = change.play
            if change.kind == "announce":
                self.health.playing(play.track_id, play.start)
            else:
                self.health.ended(play.track_id)
            if change.kind == "announce" and self.job.before:
                await self._sink.song(self.job, play, final=False)
            elif change.kind == "end" and (not self.job.before or not play.announced):
                play.announced = True
                await self._sink.song(self.job, play, final=not self.job.before)


class StreamManager:
    """One worker per active stream row of the store (with ``leases``: per row this node holds);
    ``sync`` starts, restarts and stops them."""

    def __init__(
        self, store: StreamStore, config: MonitorConfig, recognize: Recognize, duration: Duration, sink: Sink,
        health_db: Database | None = None, leases: StreamLeases | None = None,
    ):  # fmt: skip
        self._store, self.config, self._recognize, self._duration, self._sink = store, config, recognize, duration, sink
        self._health_db = health_db  # where each worker's StreamHealth is written (None: nowhere)
        self.leases = leases  # None: every stream is this manager's (one process, tests)
        self.held_until = float("inf")  # when this node's leases run out unless renewed
        self.workers: dict[int, tuple[StreamRow, StreamWorker, asyncio.Task[None]]] = {}
        self._lock = asyncio.Lock()

    async def sync(self) -> None:
        async with self._lock:
            rows = {r.id: r for r in await self._store.astreams(active_only=True)}
            if self.leases is not None:
                held, self.held_until = await self.leases.claim()
                for key in self.workers.keys() & rows.keys() - held:  # taken by another node
                    self.workers[key][1].abandon()
                rows = {k: r for k, r in rows.items() if k in held}
            await self._apply(rows)

    async def fence(self) -> None:
        """Stop every worker when this node's leases are about to run out unrenewed (the catalog
        is unreachable or hangs): another node may take the streams then. The margin of one
        renewal period makes the stop come before the end of the lease, as ``run`` calls this at
        least that often."""
        if self.leases is None or not self.leases.fencing or time.time() < self.held_until - RENEW_SECONDS:
            return
        async with self._lock:
            if self.workers:
                log.warning("stream leases lost; monitoring stopped", extra={"fields": {"streams": len(self.workers)}})
                for _, worker, _ in self.workers.values():
                    worker.abandon()
                await self._apply({})

    async def _apply(self, rows: dict[int, StreamRow]) -> None:
        """Run a worker for each of ``rows`` (restarting one whose row changed), none for the rest."""
        stopping = []
        for key, (row, worker, task) in list(self.workers.items()):
            new = rows.get(key)
            if new is None or (new.url, new.callbacks, new.updated_at) != (row.url, row.callbacks, row.updated_at):
                worker.stop()
                stopping.append(task)
                del self.workers[key]
        if stopping:
            await asyncio.wait(stopping, timeout=5)
        for key, row in rows.items():
            if key not in self.workers:
                job = StreamJob(row.id, row.radio_id, row.url, row.callbacks == "before", row.token_id, row.category)
                health = StreamHealth(row.id, self._health_db)
                worker = StreamWorker(
                    job, self.config, self._recognize, self._duration, self._sink, health, self._prior(job)
                )
                task = asyncio.create_task(worker.run(), name=f"stream-{row.token_id}-{row.radio_id}")
                self.workers[key] = (row, worker, task)

    def _prior(self, job: StreamJob) -> Prior:
        async def prior() -> Reported | None:
            found = await self._store.alast_result(job.category)
            if found is None:
                return None
            track_id, heard = found
            start = parse_timestamp(heard, self.config.timezone)
            duration = await self._duration(track_id)
            return None if start is None or duration is None else (track_id, start, duration)

        return prior

    async def run(self, interval: float) -> None:
        """Sync every ``interval`` seconds (streams changed by the CLI or another server process),
        and at least every ``RENEW_SECONDS`` when leases are kept."""
        if self.leases is not None:
            interval = min(interval, RENEW_SECONDS)
        while True:
            try:
                await asyncio.wait_for(self.sync(), SYNC_TIMEOUT)
            except Exception:  # keep monitoring whatever happened in one round
                log.exception("stream sync failed")
            await self.fence()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        async with self._lock:
            tasks = []
            for _, worker, task in self.workers.values():
                worker.stop()
                tasks.append(task)
            self.workers.clear()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=10)
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=5)
            if self.leases is not None:  # after the workers' last events: the next owner reads them
                try:
                    await self.leases.release()
                except Exception:  # the leases then run out by themselves
                    log.exception("stream leases not released")
