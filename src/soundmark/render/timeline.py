"""A scan's timeline: each found track as a bar over the recording's time axis.

Tracks that play at once (a DJ's cross-fade, talk over an intro) go to separate lanes and the
time they overlap is shaded, so a mix's transitions are visible at a glance; the spans the scan
analysed run along the bottom. SVG element ids (``gid``): segment-N (one per tracklist entry, in
order), overlap-N, scanned.
"""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from soundmark.match.scan import ScanResult, clock
from soundmark.match.tracklist import TrackSegment

COLORS = ("#3b6ea8", "#d93025", "#188038", "#b06000", "#8430ce", "#007b83")
OVERLAP = "#fbbc04"
WIDTH = 12.0  # inches
LANE_INCHES = 0.55


def lanes(segments: list[TrackSegment]) -> list[int]:
    """A lane per segment: the lowest whose last bar has ended before it starts."""
    ends: list[float] = []
    out = []
    for s in segments:
        lane = next((i for i, end in enumerate(ends) if end <= s.start), len(ends))
        if lane == len(ends):
            ends.append(s.end)
        else:
            ends[lane] = s.end
        out.append(lane)
    return out


def overlaps(segments: list[TrackSegment]) -> list[tuple[float, float]]:
    """The spans where two tracklist entries play at once."""
    out = []
    for i, a in enumerate(segments):
        for b in segments[i + 1 :]:
            lo, hi = max(a.start, b.start), min(a.end, b.end)
            if hi > lo:
                out.append((lo, hi))
    return out


def timeline_figure(result: ScanResult, names: Mapping[int, str], *, title: str = "") -> Figure:
    """The timeline of ``result``; ``names`` labels tracks by id (else "track N")."""
    segments = sorted(result.segments, key=lambda s: (s.start, s.end))
    lane_of = lanes(segments)
    n_lanes = max(lane_of, default=0) + 1
    fig = Figure(figsize=(WIDTH, 1.6 + LANE_INCHES * n_lanes), layout="constrained")
    ax = fig.add_subplot()
    total = max(result.duration, max((s.end for s in segments), default=0.0), 1.0)
    for i, (s, lane) in enumerate(zip(segments, lane_of, strict=True)):
        bars = ax.broken_barh(
            [(s.start, s.end - s.start)], (lane + 0.1, 0.8), facecolors=COLORS[i % len(COLORS)], alpha=0.8, zorder=2
        )
        bars.set_gid(f"segment-{i}")
        label = f"{names.get(s.track_id) or f'track {s.track_id}'}  {clock(s.start)}–{clock(s.end)}"
        ax.text(
            s.start + total * 0.004, lane + 0.5, label, va="center", ha="left", fontsize=8, color="white",
            clip_on=True, fontweight="bold",
        )  # fmt: skip
    for i, (lo, hi) in enumerate(overlaps(segments)):
        shade = ax.axvspan(lo, hi, color=OVERLAP, alpha=0.5, lw=0, zorder=0)  # behind the bars
        shade.set_gid(f"overlap-{i}")
    scanned = ax.broken_barh([(a, b - a) for a, b in result.scanned], (n_lanes + 0.15, 0.25), facecolors="#c0c4c8")
    scanned.set_gid("scanned")
    _axes(ax, total, n_lanes)
    n = len(segments)
    ax.set_title(title or f"{n} track{'s' if n != 1 else ''} in {clock(result.duration)}", fontsize=10)
    return fig


def _axes(ax: Axes, total: float, n_lanes: int) -> None:
    ax.set_xlim(0, total)
    ax.set_ylim(n_lanes + 0.5, -0.1)  # lane 0 on top, the analysed spans at the bottom
    ax.set_yticks([n_lanes + 0.27], ["analysed"], fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, steps=[1, 2, 3, 5, 6, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.set_xlabel("time in the recording")
    ax.grid(axis="x", alpha=0.3)
