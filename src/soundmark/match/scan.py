"""Long recordings: stream a file through sliding-window recognition and build a tracklist.

The input is decoded block by block (never whole) into chunks of about a minute; each chunk is
analysed by a worker process (its own open store): one spectrogram and one peak set per chunk,
hashed under a wide speed grid (DJ pitch faders play tracks up to ±8 % off), then every window
(10 s every 5 s by default) is looked up, voted and verified like a short query.

The parent feeds the window matches to a ``Tracklist`` (match/tracklist.py), which merges them into
segments and refines their boundaries. Cross-fades give two overlapping segments; stretches of
unknown audio give none.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from soundmark.audio.decode import Source, iter_blocks
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks
from soundmark.fingerprint.spectrogram import log_spectrogram
from soundmark.fingerprint.windows import PeakWindows
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.match.tracklist import ScanSettings, Tracklist, TrackSegment, WindowHit
from soundmark.proc import die_with_parent
from soundmark.store import Store, recorded_params

ProgressFn = Callable[[float, float | None], None]


def scan_params(base: FingerprintParams, speeds: Iterable[float]) -> FingerprintParams:
    """``base`` with a speed-only warp grid (query-only: the same store opens with it)."""
    return dataclasses.replace(base, warp_grid=tuple((float(s), float(s)) for s in speeds))


def open_scan_store(db: str | os.PathLike[str], speeds: Iterable[float]) -> Store:
    """The store at ``db`` opened with this engine's parameters and the scan's speed grid."""
    return Store(db, scan_params(recorded_params(db), speeds))


@dataclass
class ScanResult:
    segments: list[TrackSegment]
    duration: float  # seconds of audio decoded
    scanned: list[tuple[float, float]]  # recording spans analysed
    wall_seconds: float
    windows: int

    @property
    def realtime_factor(self) -> float:
        return self.duration / self.wall_seconds if self.wall_seconds > 0 else 0.0


# --- window plan ------------------------------------------------------------------------------


def plan_windows(
    spans: Iterable[tuple[float, float | None]], window: float, hop: float
) -> Iterator[tuple[float, float | None]]:
    """Window starts covering each span (start, end or None = to the end of the input).

    Yields (window start, span end); a span shorter than a window gets one window.
    """
    for s0, s1 in spans:
        t = s0
        while True:
            if s1 is not None and t + window > s1:
                last = max(s0, s1 - window)
                if last > t - hop + 1e-6 or t == s0:
                    yield (last, s1)
                break
            yield (t, s1)
            t += hop


def chunk_spans(
    skip_first: float = 0.0,
    chunk: float = 12.0,
    every: int = 0,
    skip: int = 0,
    limit: int = 0,
    *,
    duration: float | None = None,
) -> list[tuple[float, float | None]]:
    """AudD's enterprise selection as recording spans: after ``skip_first`` seconds, scan
    ``every`` chunks of ``chunk`` seconds, skip ``skip``, …; at most ``limit`` chunks (0 = all).

    The plan is finite for every parameter combination: it ends at ``duration`` (seconds of
    input to consider; None = unknown, allowed only where ``limit`` or ``skip = 0`` bounds the
    plan by itself — a periodic plan without a limit raises ValueError), spans are clipped to it
    and a span starting at or after it is left out.
    """
    if chunk <= 0 or not math.isfinite(chunk) or not math.isfinite(skip_first) or skip_first < 0:
        raise ValueError("chunk must be positive and skip_first a finite, non-negative number of seconds")
    if duration is not None and not math.isfinite(duration):
        raise ValueError("duration must be finite")
    if skip <= 0:
        end = None if limit <= 0 else skip_first + limit * chunk
        if duration is not None:
            end = duration if end is None else min(end, duration)
        return [] if end is not None and skip_first >= end else [(skip_first, end)]
    if limit <= 0 and duration is None:
        raise ValueError("a periodic plan (skip > 0) without a limit needs the input's duration")
    run = max(1, every)
    t = skip_first
    done = 0
    out: list[tuple[float, float | None]] = []
    while (limit <= 0 or done < limit) and (duration is None or t < duration):
        n = run if limit <= 0 else min(run, limit - done)
        end = t + n * chunk
        out.append((t, end if duration is None else min(end, duration)))
        done += n
        t += (n + skip) * chunk
    return out


# --- worker side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    start_sample: int  # absolute sample index of samples[0]
    samples: np.ndarray
    windows: tuple[tuple[int, int], ...]  # (absolute start sample, absolute end sample)
    keep_until: int  # absolute sample: peaks at or after it belong to the next chunk


@dataclass(frozen=True)
class ChunkResult:
    hits: list[WindowHit]
    peaks: np.ndarray  # int32 (n, 2): absolute frame, band bin
    windows: int


class _Analyzer:
    """A store opened with the scan grid and a recognizer (one per process)."""

    current: _Analyzer | None = None

    def __init__(self, db: str, settings: ScanSettings):
        self.settings = settings
        self.store = open_scan_store(db, settings.speeds)
        self.params = self.store.params
        self.recognizer = Recognizer(
            self.store, MatchSettings(min_score=settings.extend_score, min_votes=settings.min_votes)
        )

    def close(self) -> None:
        self.store.close()

    def analyze(self, task: ChunkTask) -> ChunkResult:
        p, s = self.params, self.settings
        hop = p.hop
        spec = log_spectrogram(task.samples, p)
        peaks = find_peaks(spec, p, p.query_peaks_per_second)
        frames = peaks[:, 0].astype(np.int64)
        cut = PeakWindows(peaks, p)  # hashed once under the speed grid; every window cuts its print
        hits: list[WindowHit] = []
        sr = p.sample_rate
        for w0, w1 in task.windows:
            f0 = (w0 - task.start_sample) // hop
            f1 = max(f0 + 1, (w1 - task.start_sample - p.n_fft) // hop + 1)
            qp = cut.window(f0, f1)
            start = (task.start_sample + f0 * hop) / sr
            end = w1 / sr
            for x in self.recognizer.score_print(qp)[: 1 + 3]:
                if x.score < s.extend_score:
                    continue
                c = x.candidate
                hits.append(
                    WindowHit(
                        track_id=c.track_id,
                        window_start=start,
                        window_end=end,
                        ref_offset=c.offset * p.frame_seconds,
                        speed=p.warp_grid[c.rate_idx][0],
                        score=round(float(x.score), 2),
                    )
                )
        keep = frames < (task.keep_until - task.start_sample) // hop
        out = peaks[keep].copy()
        out[:, 0] += task.start_sample // hop
        return ChunkResult(hits, out, len(task.windows))


def _init_worker(db: str, settings: ScanSettings) -> None:
    _Analyzer.current = _Analyzer(db, settings)


def _analyze_in_worker(task: ChunkTask) -> ChunkResult:
    assert _Analyzer.current is not None
    return _Analyzer.current.analyze(task)


# --- parent side: chunking --------------------------------------------------------------------


def iter_chunks(
    blocks: Iterable[np.ndarray],
    windows: Iterator[tuple[float, float | None]],
    sample_rate: int,
    settings: ScanSettings,
    frame_hop: int = 256,
) -> Iterator[ChunkTask]:
    """Group planned windows into chunk tasks, holding only the samples still needed.

    Chunks start on the frame grid (multiples of ``frame_hop`` samples), so that the peaks of
    all chunks share one frame clock.
    """
    sr = sample_rate
    win = int(settings.window_seconds * sr)
    chunk = int(settings.chunk_seconds * sr)
    buf = np.zeros(0, dtype=np.float32)
    buf_start = 0  # absolute sample of buf[0]
    eof = False
    block_iter = iter(blocks)
    pending: tuple[int, int] | None = None  # next window (start, end) not yet placed
    drop = 0  # input samples still to discard: they lie between buf's end and buf_start (a gap)

    def next_window() -> tuple[int, int] | None:
        for ws, span_end in windows:
            a = round(ws * sr)
            b = a + win if span_end is None else min(a + win, round(span_end * sr))
            return (a, b)
        return None

    def fill(until: int) -> None:
        nonlocal buf, eof, drop
        parts = [buf]
        have = buf_start + len(buf)
        while have < until and not eof:
            try:
                blk = next(block_iter)
            except StopIteration:
                eof = True
                break
            if drop:
                n = min(drop, len(blk))
                blk, drop = blk[n:], drop - n
                if not len(blk):
                    continue
            parts.append(blk)
            have += len(blk)
        if len(parts) > 1:
            buf = np.concatenate(parts)

    pending = next_window()
    while pending is not None:
        group: list[tuple[int, int]] = []
        first = pending[0]
        while pending is not None and pending[0] - first < chunk:
            fill(pending[1])
            end_avail = buf_start + len(buf)
            if pending[0] >= end_avail - sr:  # starts past (or within 1 s of) the end of the input
                pending = None
                break
            a, b = pending[0], min(pending[1], end_avail)
            if b - a < win and eof and group and b - a < win // 2:
                # A short tail: move the window back so that it is whole.
                a = max(group[-1][0], b - win)
            group.append((a, b))
            pending = next_window()
        if not group:
            break
        lo = group[0][0] - group[0][0] % frame_hop
        hi = max(b for _, b in group)
        keep_until = pending[0] if pending is not None else 1 << 62
        rel0 = lo - buf_start
        task = ChunkTask(lo, buf[rel0 : hi - buf_start].copy(), tuple(group), keep_until)
        # Drop what no later window needs; input not read yet up to the next window (a gap
        # between two spans) is discarded as it arrives, so that buf stays on the input's clock.
        if pending is not None:
            cut = max(0, pending[0] - pending[0] % frame_hop - buf_start)
            drop += max(0, cut - len(buf))
            buf = buf[cut:]
            buf_start += cut
        yield task


# --- parent side: merging and refinement ------------------------------------------------------


class ScanCancelled(Exception):
    """``should_stop`` asked the scan to stop."""


def scan(
    source: Source,
    db: str | os.PathLike[str],
    settings: ScanSettings | None = None,
    *,
    workers: int | None = None,
    spans: Iterable[tuple[float, float | None]] | None = None,
    total_seconds: float | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScanResult:
    """Tracklist of ``source`` against the store at ``db``.

    ``workers`` analyses chunks in that many worker processes (None: in this process);
    ``spans`` restricts the analysis to recording spans (default: everything);
    ``progress(seconds_done, total_seconds)`` is called after every chunk; ``should_stop()``
    returning true stops the scan with ScanCancelled.
    """
    s = settings or ScanSettings()
    t_start = time.perf_counter()
    store = open_scan_store(db, s.speeds)
    sr = store.params.sample_rate
    span_list = list(spans) if spans is not None else [(0.0, None)]
    tracklist = Tracklist(store, s, span_list)
    windows = plan_windows(span_list, s.window_seconds, s.hop_seconds)
    decoded = 0
    end_limit = None if any(b is None for _, b in span_list) else max(b for _, b in span_list if b is not None)

    def blocks() -> Iterator[np.ndarray]:
        nonlocal decoded
        for blk in iter_blocks(source, sr, max_seconds=end_limit):
            decoded += len(blk)
            yield blk

    n_windows = 0
    executor: ProcessPoolExecutor | None = None
    local: _Analyzer | None = None
    try:
        if workers:
            executor = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,  # no scan worker outlives a killed server
                initargs=(os.getpid(), _init_worker, str(db), s),
            )
        else:
            local = _Analyzer(str(db), s)
        inflight: deque[tuple[ChunkTask, Future[ChunkResult] | None]] = deque()

        def consume(task: ChunkTask, res: ChunkResult) -> None:
            nonlocal n_windows
            tracklist.add_peaks(res.peaks)
            now = task.windows[-1][0] / sr
            tracklist.add_hits(res.hits, now)
            n_windows += res.windows
            if progress is not None:
                progress(task.windows[-1][1] / sr, total_seconds)

        for task in iter_chunks(blocks(), windows, sr, s, store.params.hop):
            if should_stop is not None and should_stop():
                raise ScanCancelled("the scan was stopped")
            if executor is not None:
                inflight.append((task, executor.submit(_analyze_in_worker, task)))
                while len(inflight) > 2 * (workers or 1):
                    t, fut = inflight.popleft()
                    assert fut is not None
                    consume(t, fut.result())
            else:
                assert local is not None
                consume(task, local.analyze(task))
        while inflight:
            t, fut = inflight.popleft()
            assert fut is not None
            consume(t, fut.result())
        segments = tracklist.finish(decoded / sr)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if local is not None:
            local.close()
        store.close()
    duration = decoded / sr
    scanned = [(a, min(b, duration) if b is not None else duration) for a, b in span_list if a < duration]
    return ScanResult(segments, duration, scanned, time.perf_counter() - t_start, n_windows)


def clock(seconds: float) -> str:
    """HH:MM:SS for tracklists."""
    s = max(0, round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
