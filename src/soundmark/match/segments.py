"""Long recordings: stream a file through sliding-window recognition and build a tracklist.

The input is decoded block by block (never whole) into chunks of about a minute; each chunk is
analysed by a worker process (its own open store): one spectrogram and one peak set per chunk,
hashed under a wide speed grid (DJ pitch faders play tracks up to ±8 % off), then every window
(10 s every 5 s by default) is looked up, voted and verified like a short query.

The parent merges window matches of one track whose positions in the reference advance with the
recording (same track, consistent offset and speed) into one segment, and then refines each
segment's boundaries on the raw peaks: every recording peak around the segment is laid on the
reference under the segment's fitted alignment, and the boundaries are where the share of peaks
landing on reference peaks stands above chance (a maximum-sum interval of hit − threshold).
Cross-fades give two overlapping segments; stretches of unknown audio give none.
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
from dataclasses import dataclass, field

import numpy as np

from soundmark.audio.decode import Source, iter_blocks
from soundmark.catalog.models import Track
from soundmark.fingerprint.extract import QueryPrint, QueryWarp, warp_peaks
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks
from soundmark.fingerprint.spectrogram import band_bins, log_spectrogram
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.store import Store

# Playback speeds searched (time and pitch together, as a turntable or a pitch fader plays).
SCAN_SPEEDS: tuple[float, ...] = (0.92, 0.94, 0.96, 0.98, 1.0, 1.02, 1.04, 1.06, 1.08)


@dataclass(frozen=True)
class ScanSettings:
    window_seconds: float = 10.0  # audio per recognition window
    hop_seconds: float = 5.0  # step between window starts
    min_score: float = 6.0  # a segment needs one window at least this confident
    extend_score: float = 3.0  # weaker windows may extend a segment they agree with
    min_votes: int = 4
    speeds: tuple[float, ...] = SCAN_SPEEDS
    chunk_seconds: float = 30.0  # audio per worker task
    max_gap_seconds: float = 25.0  # unmatched time tolerated inside one segment (talk-over, breaks)
    min_segment_windows: int = 2  # a segment seen in one window only must score twice min_score
    refine: bool = True  # refine boundaries on the raw peaks
    history_seconds: float = 3 * 3600.0  # recording peaks kept for refinement (≈ 1 MB per hour)
    refine_level: float = 0.05  # boundary threshold between chance (0) and the segment's hit rate (1)
    boundary_pad_seconds: float = 0.5  # refined boundaries are widened by this much (fade lag)
    snap_seconds: float = 2.5  # an end this close to the reference's end snaps to it (a start: half)


def scan_params(base: FingerprintParams, speeds: Iterable[float]) -> FingerprintParams:
    """``base`` with a speed-only warp grid (query-only: the same store opens with it)."""
    return dataclasses.replace(base, warp_grid=tuple((float(s), float(s)) for s in speeds))


def open_scan_store(db: str | os.PathLike[str], speeds: Iterable[float]) -> Store:
    """The store at ``db`` opened with this engine's parameters and the scan's speed grid."""
    return Store(db, scan_params(FingerprintParams(), speeds))


@dataclass(frozen=True)
class WindowHit:
    """One verified match of one window."""

    track_id: int
    window_start: float  # seconds in the recording
    window_end: float
    ref_offset: float  # seconds in the reference at window_start
    speed: float
    score: float


@dataclass(frozen=True)
class TrackSegment:
    """One entry of the tracklist."""

    track_id: int
    start: float  # seconds in the recording
    end: float
    ref_start: float  # seconds in the reference where the recording's segment begins
    ref_end: float
    speed: float  # playback speed relative to the reference (1.04 = 4 % fast)
    score: float  # best window confidence (−log10 p)
    windows: int  # windows that matched

    def to_dict(self) -> dict[str, object]:
        return {
            "track_id": self.track_id,
            "start": round(self.start, 2),
            "end": round(self.end, 2),
            "ref_start": round(self.ref_start, 2),
            "ref_end": round(self.ref_end, 2),
            "speed": round(self.speed, 4),
            "score": round(self.score, 1),
            "windows": self.windows,
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> TrackSegment:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


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
    skip_first: float = 0.0, chunk: float = 12.0, every: int = 0, skip: int = 0, limit: int = 0
) -> Iterator[tuple[float, float | None]]:
    """AudD's enterprise selection as recording spans: after ``skip_first`` seconds, scan
    ``every`` chunks of ``chunk`` seconds, skip ``skip``, …; at most ``limit`` chunks (0 = all)."""
    if skip <= 0:
        yield (skip_first, None if limit <= 0 else skip_first + limit * chunk)
        return
    run = max(1, every)
    t = skip_first
    done = 0
    while True:
        n = run if limit <= 0 else min(run, limit - done)
        if n <= 0:
            return
        yield (t, t + n * chunk)
        done += n
        t += (n + max(0, skip)) * chunk


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
        self.lo = band_bins(self.params)[0]

    def close(self) -> None:
        self.store.close()

    def analyze(self, task: ChunkTask) -> ChunkResult:
        p, s = self.params, self.settings
        hop = p.hop
        spec = log_spectrogram(task.samples, p)
        peaks = find_peaks(spec, p, p.query_peaks_per_second)
        frames = peaks[:, 0].astype(np.int64)
        warps = []
        for rate, frate in p.warp_grid:
            t, f = warp_peaks(peaks, rate, frate, self.lo)
            h, at = pair_hashes(t, f, p, p.query_fanout)
            # Anchor frames back in query time, to select the hashes of each window.
            warps.append((h, at.astype(np.int64), np.rint(at / rate).astype(np.int64), rate, frate))
        hits: list[WindowHit] = []
        sr = p.sample_rate
        for w0, w1 in task.windows:
            f0 = (w0 - task.start_sample) // hop
            f1 = max(f0 + 1, (w1 - task.start_sample - p.n_fft) // hop + 1)
            i0, i1 = np.searchsorted(frames, [f0, f1])
            wpeaks = peaks[i0:i1].copy()
            wpeaks[:, 0] -= f0
            qw = []
            for h, at, q, rate, frate in warps:
                sel = (q >= f0) & (q < f1)
                qw.append(QueryWarp(h[sel], (at[sel] - round(f0 * rate)).astype(np.int32), rate, frate))
            qp = QueryPrint(wpeaks, f1 - f0, qw)
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

    def next_window() -> tuple[int, int] | None:
        for ws, span_end in windows:
            a = round(ws * sr)
            b = a + win if span_end is None else min(a + win, round(span_end * sr))
            return (a, b)
        return None

    def fill(until: int) -> None:
        nonlocal buf, eof
        parts = [buf]
        have = buf_start + len(buf)
        while have < until and not eof:
            try:
                blk = next(block_iter)
            except StopIteration:
                eof = True
                break
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
        # Drop what no later window needs.
        if pending is not None:
            cut = max(0, pending[0] - pending[0] % frame_hop - buf_start)
            buf = buf[cut:]
            buf_start += cut
        yield task


# --- parent side: merging and refinement ------------------------------------------------------


@dataclass
class _Open:
    track_id: int
    hits: list[WindowHit] = field(default_factory=list)

    @property
    def last(self) -> WindowHit:
        return self.hits[-1]

    def predicted_offset(self, t: float) -> float:
        h = self.last
        return h.ref_offset + (t - h.window_start) * h.speed

    def best(self) -> float:
        return max(h.score for h in self.hits)


class Tracklist:
    """Merge window hits (in recording order) into track segments, refining each as it closes."""

    def __init__(self, store: Store, settings: ScanSettings, spans: Iterable[tuple[float, float | None]] = ()):
        self.store = store
        self.settings = settings
        self.spans = sorted(spans, key=lambda x: x[0])
        self.params = store.params
        self.open: list[_Open] = []
        self.done: list[TrackSegment] = []
        self._peaks: deque[np.ndarray] = deque()
        self._durations: dict[int, float] = {}

    # peaks history ----------------------------------------------------------------------------
    def add_peaks(self, peaks: np.ndarray) -> None:
        if len(peaks):
            self._peaks.append(peaks)
        keep_from = peaks[-1, 0] if len(peaks) else None
        if keep_from is not None:
            oldest = min((o.hits[0].window_start for o in self.open), default=math.inf)
            limit_s = min(oldest - 2 * self.settings.window_seconds, peaks[-1, 0] * self.params.frame_seconds)
            limit_s = max(limit_s, peaks[-1, 0] * self.params.frame_seconds - self.settings.history_seconds)
            limit_f = limit_s / self.params.frame_seconds
            while len(self._peaks) > 1 and self._peaks[0][-1, 0] < limit_f:
                self._peaks.popleft()

    def _peaks_between(self, t0: float, t1: float) -> np.ndarray:
        fs = self.params.frame_seconds
        f0, f1 = t0 / fs, t1 / fs
        parts = [p[(p[:, 0] >= f0) & (p[:, 0] < f1)] for p in self._peaks if len(p) and p[-1, 0] >= f0 and p[0, 0] < f1]
        return np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.int32)

    # merging ----------------------------------------------------------------------------------
    def add_hits(self, hits: list[WindowHit], now: float) -> None:
        """Hits of windows that start at or before ``now`` (all earlier windows already added)."""
        s = self.settings
        for h in sorted(hits, key=lambda x: (x.window_start, -x.score)):
            target = None
            for o in self.open:
                if o.track_id != h.track_id or h.window_start < o.last.window_start - 1e-6:
                    continue
                if self._span_index(h.window_start) != self._span_index(o.last.window_start):
                    continue  # a segment never bridges the gap between two scanned spans
                dt = h.window_start - o.last.window_start
                tol = 1.0 + 0.03 * dt
                if abs(o.predicted_offset(h.window_start) - h.ref_offset) <= tol:
                    target = o
                    break
            if target is not None:
                if target.last.window_start == h.window_start:
                    if h.score > target.last.score:
                        target.hits[-1] = h
                else:
                    target.hits.append(h)
            elif h.score >= s.min_score:
                self.open.append(_Open(h.track_id, [h]))
        self._close_before(now - s.max_gap_seconds)

    def _span_index(self, t: float) -> int:
        for i, (a, b) in enumerate(self.spans):
            if a <= t + 1e-6 and (b is None or t < b):
                return i
        return -1

    def _close_before(self, t: float) -> None:
        still = []
        for o in self.open:
            if o.last.window_end < t:
                self._finish(o)
            else:
                still.append(o)
        self.open = still

    def finish(self, duration: float | None = None) -> list[TrackSegment]:
        for o in self.open:
            self._finish(o)
        self.open = []
        # One track cannot play twice at once: of overlapping segments of the same track
        # (a repeated chorus matching elsewhere in the reference) keep the better supported.
        kept: list[TrackSegment] = []
        for seg in sorted(self.done, key=lambda x: (-x.windows, -x.score)):
            clash = any(
                k.track_id == seg.track_id
                and min(k.end, seg.end) - max(k.start, seg.start) > 0.5 * min(k.end - k.start, seg.end - seg.start)
                for k in kept
            )
            if not clash:
                kept.append(seg)
        if duration is not None:
            kept = [dataclasses.replace(k, end=min(k.end, duration)) if k.end > duration else k for k in kept]
        self.done = sorted(kept, key=lambda x: (x.start, x.end))
        return self.done

    def _duration(self, track_id: int) -> float:
        if track_id not in self._durations:
            tr = self.store.catalog.get_track(track_id)
            self._durations[track_id] = tr.duration if tr is not None else math.inf
        return self._durations[track_id]

    def _finish(self, o: _Open) -> None:
        s = self.settings
        hits = o.hits
        strong = sum(1 for h in hits if h.score >= s.min_score)
        if len(hits) < s.min_segment_windows and o.best() < 2 * s.min_score:
            return
        if strong == 0:
            return
        speed, intercept = _fit_alignment(hits)
        # intercept: recording time where reference time 0 plays.
        dur = self._duration(o.track_id)
        start = hits[0].window_start
        end = hits[-1].window_end
        if s.refine:
            refined = self._refine(o.track_id, speed, intercept, start, end)
            if refined is not None:
                # The threshold is crossed inside a fade, after the track became audible (before
                # it fell silent): widen by the typical lag.
                start, end = refined[0] - s.boundary_pad_seconds, refined[1] + s.boundary_pad_seconds
        start = max(start, intercept)
        end = min(end, intercept + dur / speed)
        # A track heard to (nearly) its last second played to its end: release tails and
        # fade-outs hide the last seconds from any detector, the alignment does not.
        if (start - intercept) * speed < s.snap_seconds / 2:
            start = max(0.0, intercept)
        if dur - (end - intercept) * speed < s.snap_seconds:
            end = intercept + dur / speed
        span = next(
            (
                (a, b)
                for a, b in self.spans
                if a <= hits[0].window_start + 1e-6 and (b is None or hits[0].window_start < b)
            ),
            None,
        )
        if span is not None:
            start = max(start, span[0])
            end = end if span[1] is None else min(end, span[1])
        if end - start < 1.0:
            return
        self.done.append(
            TrackSegment(
                track_id=o.track_id,
                start=start,
                end=end,
                ref_start=max(0.0, (start - intercept) * speed),
                ref_end=max(0.0, (end - intercept) * speed),
                speed=speed,
                score=o.best(),
                windows=len(hits),
            )
        )

    def _refine(
        self, track_id: int, speed: float, intercept: float, start: float, end: float
    ) -> tuple[float, float] | None:
        """Boundaries where recording peaks stop landing on the reference's peaks."""
        p, s = self.params, self.settings
        fs = p.frame_seconds
        margin = s.window_seconds + 2.0
        t0, t1 = max(0.0, start - margin), end + margin
        q = self._peaks_between(t0, t1)
        ref = self.store.index.track_peaks(track_id)
        if len(q) < 20 or len(ref) == 0:
            return None
        lo = band_bins(p)[0]
        # Recording frame -> reference frame under the alignment; frequencies scale with speed.
        rt = (q[:, 0] * fs - intercept) * speed / fs
        rf = (q[:, 1] + lo) / speed - lo
        ti = np.rint(rt).astype(np.int64)
        fi = np.rint(rf).astype(np.int64)
        codes = _dilated_codes(ref)
        n_ref = int(ref[-1, 0]) + 1

        def hit_at(shift: int) -> np.ndarray:
            tt = ti + shift
            inside = (tt >= 0) & (tt < n_ref) & (fi >= 0) & (fi < 1024)
            out = np.zeros(len(tt), dtype=bool)
            out[inside] = np.isin(tt[inside] * 1024 + fi[inside], codes)
            return out

        hit = hit_at(0)
        inside_ref = (ti >= 0) & (ti < n_ref)
        null = np.mean([hit_at(sh)[inside_ref].mean() if inside_ref.any() else 0.0 for sh in (-211, -137, 149, 223)])
        qt = q[:, 0] * fs
        core = (qt >= start) & (qt < end) & inside_ref
        if not core.any():
            return None
        p_in = float(hit[core].mean())
        p_bg = float(null)
        if p_in <= p_bg * 1.5:
            return None
        c = p_bg + s.refine_level * (p_in - p_bg)
        # Per 0.25 s bin: hits − c·peaks; the best interval (maximum sum) is the segment.
        bin_s = 0.25
        b = ((qt - t0) / bin_s).astype(np.int64)
        nb = int(b.max()) + 1
        gain = np.bincount(b, weights=hit.astype(np.float64), minlength=nb) - c * np.bincount(b, minlength=nb)
        i0, i1 = _max_subarray(gain)
        if i1 <= i0:
            return None
        return t0 + i0 * bin_s, t0 + i1 * bin_s


def _dilated_codes(ref: np.ndarray) -> np.ndarray:
    """Reference peaks widened by ±1 frame and ±1 bin, as sorted codes frame * 1024 + bin."""
    t = ref[:, 0].astype(np.int64)
    f = ref[:, 1].astype(np.int64)
    out = [(t + dt) * 1024 + np.clip(f + df, 0, 1023) for dt in (-1, 0, 1) for df in (-1, 0, 1)]
    return np.unique(np.concatenate(out))


def _max_subarray(x: np.ndarray) -> tuple[int, int]:
    """(i, j) maximising x[i:j].sum()."""
    cs = np.concatenate([[0.0], np.cumsum(x)])
    run_min_idx = np.zeros(len(cs), dtype=np.int64)
    best, bi, bj = 0.0, 0, 0
    mi = 0
    for j in range(1, len(cs)):
        if cs[j - 1] < cs[mi]:
            mi = j - 1
        run_min_idx[j] = mi
        v = cs[j] - cs[mi]
        if v > best:
            best, bi, bj = v, mi, j
    return bi, bj


def _fit_alignment(hits: list[WindowHit]) -> tuple[float, float]:
    """(speed, recording time of reference 0) fitted over the segment's windows."""
    w = np.array([h.window_start for h in hits])
    o = np.array([h.ref_offset for h in hits])
    grid = float(np.median([h.speed for h in hits]))
    speed = grid
    if len(hits) >= 3 and w[-1] - w[0] >= 15.0:
        slope = float(np.polyfit(w, o, 1)[0])
        if abs(slope - grid) <= 0.015:
            speed = slope
    # ref = (t - intercept) * speed  →  intercept = t - ref / speed (median over windows)
    intercept = float(np.median(w - o / speed))
    return speed, intercept


# --- driver -----------------------------------------------------------------------------------

ProgressFn = Callable[[float, float | None], None]


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
                initializer=_init_worker,
                initargs=(str(db), s),
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
                while len(inflight) > 2 * workers:
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


def segment_record(seg: TrackSegment, track: Track | None) -> dict[str, object]:
    """One tracklist entry with the track's metadata (CLI JSON, API job results)."""
    out: dict[str, object] = {"start_time": clock(seg.start), "end_time": clock(seg.end), **seg.to_dict()}
    if track is not None:
        meta = track.meta
        for key in ("artist", "title", "album", "release_date", "label", "isrc", "upc", "audio_id"):
            value = getattr(meta, key)
            if value not in (None, ""):
                out[key] = value
    return out
