"""The tracklist of a long recording: window matches merged into segments with refined boundaries.

Window matches of one track whose positions in the reference advance with the recording (same
track, consistent offset and speed) become one segment; each segment's boundaries are then refined
on the raw peaks: every recording peak around the segment is laid on the reference under the
segment's fitted alignment, and the boundaries are where the share of peaks landing on reference
peaks stands above chance (a maximum-sum interval of hit − threshold).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.spectrogram import band_bins
from soundmark.store import Store

# Playback speeds searched (time and pitch together, as a turntable or a pitch fader plays).

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
            # Clip to the audio decoded; a segment that would start past it is dropped, never
            # reported with an end before its start.
            kept = [dataclasses.replace(k, end=min(k.end, duration)) if k.end > duration else k for k in kept]
            kept = [k for k in kept if k.end > k.start]
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
        span = peak_code_span(p)
        codes = _dilated_codes(ref, span)
        n_ref = int(ref[-1, 0]) + 1

        def hit_at(shift: int) -> np.ndarray:
            tt = ti + shift
            inside = (tt >= 0) & (tt < n_ref) & (fi >= 0) & (fi < span)
            out = np.zeros(len(tt), dtype=bool)
            out[inside] = np.isin(tt[inside] * span + fi[inside], codes)
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


def peak_code_span(params: FingerprintParams) -> int:
    """The bin span of this module's peak codes (frame * span + bin): a peak's bin indexes the
    peak band, so it is below the band's width; one more leaves room for the +1 bin widening."""
    lo, hi = band_bins(params)
    return hi - lo + 1


def _dilated_codes(ref: np.ndarray, span: int) -> np.ndarray:
    """Reference peaks widened by ±1 frame and ±1 bin, as sorted codes frame * span + bin."""
    t = ref[:, 0].astype(np.int64)
    f = ref[:, 1].astype(np.int64)
    out = [(t + dt) * span + np.clip(f + df, 0, span - 1) for dt in (-1, 0, 1) for df in (-1, 0, 1)]
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
