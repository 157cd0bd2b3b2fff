"""The "why it matched" picture of an ``Explanation`` (match/explain.py).

Panel 1: the query's peaks (time in the clip × frequency), the matched reference's stored peaks
laid over them at the found offset and warp, the agreeing query peaks highlighted. Panel 2: the
offset histogram of the candidate's votes, the winning bin marked. Beside it the candidates the
recognizer weighed, each with its verdict; over it all a caption: the track, offset, speed,
score and what the score means. A miss draws its strongest rejected candidate the same way.

SVG element ids (``gid``): query-peaks, reference-peaks, agreeing-peaks, offset-histogram,
winning-bin, candidates, caption.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from soundmark.match.explain import CandidateEvidence, Explanation
from soundmark.match.scan import clock
from soundmark.render.figure import figure_bytes

QUERY = "#9aa0a6"
REFERENCE = "#3b6ea8"
AGREE = "#d93025"
MISS = "#b06000"
SIZE = (11.0, 7.5)  # inches at figure.DPI
MAX_CANDIDATES = 5
WRAP = 62  # characters per line of a candidate's reason


def speed_text(c: CandidateEvidence) -> str:
    parts = []
    if abs(c.time_rate - 1) > 1e-6:
        parts.append(f"speed {c.time_rate:.3g}x")
    if abs(c.freq_rate - c.time_rate) > 1e-6 and abs(c.freq_rate - 1) > 1e-6:
        parts.append(f"pitch {c.freq_rate:.4g}x")
    return ", ".join(parts) or "original speed and pitch"


def caption(e: Explanation) -> tuple[str, str]:
    """The picture's title and the line under it."""
    b = e.best
    if b is None:
        return "No match", e.meaning
    offset = f"at {clock(b.offset_seconds)} ({b.offset_seconds:.2f} s) in the track"
    if e.matched:
        return f"Match: {b.name}", f"{offset}, {speed_text(b)}. {e.meaning}"
    return f"No match — strongest candidate: {b.name}", f"{offset}, {speed_text(b)}. {b.verdict}: {e.meaning}"


def explain_figure(e: Explanation) -> Figure:
    """The picture of ``e`` (a Figure with no canvas yet: render/figure.py writes it)."""
    fig = Figure(figsize=SIZE, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=(1.6, 1.0), width_ratios=(1.0, 1.0))
    title, sub = caption(e)
    head = fig.suptitle(f"{title}\n{textwrap.fill(sub, 125)}", fontsize=10.5, ha="center")
    head.set_gid("caption")
    _peaks(fig.add_subplot(grid[0, :]), e)
    _histogram(fig.add_subplot(grid[1, 0]), e)
    _candidates(fig.add_subplot(grid[1, 1]), e)
    return fig


def _peaks(ax: Axes, e: Explanation) -> None:
    a = e.alignment
    ax.set_xlabel("time in the clip (s)")
    ax.set_ylabel("frequency (Hz)")
    if a is None:
        ax.set_title("the clip's peaks met no stored track", fontsize=9)
        return
    q = ax.scatter(a.query_t, a.query_hz, s=9, c=QUERY, lw=0, label=f"clip peaks ({len(a.query_t)})")
    q.set_gid("query-peaks")
    r = ax.scatter(
        a.ref_t, a.ref_hz, s=34, facecolors="none", edgecolors=REFERENCE, lw=0.8,
        label=f"reference peaks at the alignment ({len(a.ref_t)})",
    )  # fmt: skip
    r.set_gid("reference-peaks")
    n = int(a.agree.sum())
    g = ax.scatter(a.query_t[a.agree], a.query_hz[a.agree], s=12, c=AGREE, lw=0, label=f"agreeing peaks ({n})")
    g.set_gid("agreeing-peaks")
    ax.set_xlim(0, max(e.duration_seconds, 1e-3))
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
    b = e.best
    assert b is not None
    ax.set_title(
        f"{b.name}: {n} of {len(a.query_t)} clip peaks meet a stored peak (±1 frame, ±1 bin)", fontsize=9
    )  # fmt: skip


def _histogram(ax: Axes, e: Explanation) -> None:
    h = e.histogram
    ax.set_xlabel("offset in the track (s)")
    ax.set_ylabel("aligned votes")
    if h is None:
        ax.set_title("no votes", fontsize=9)
        return
    edges = np.append(h.starts, h.starts[-1] + h.bin_seconds)
    stairs = ax.stairs(h.counts, edges, fill=True, color=REFERENCE, alpha=0.55)
    stairs.set_gid("offset-histogram")
    win = ax.bar(
        h.starts[h.winner], h.counts[h.winner], width=h.bin_seconds, align="edge",
        color=AGREE if e.matched else MISS,
    )  # fmt: skip
    win.patches[0].set_gid("winning-bin")
    at = float(h.starts[h.winner]) + h.bin_seconds / 2
    ax.annotate(
        f"{int(h.counts[h.winner])} votes at {at:.2f} s", (at, float(h.counts[h.winner])),
        xytext=(6, -2), textcoords="offset points", fontsize=8, va="top",
    )  # fmt: skip
    ax.set_ylim(0, max(1, int(h.counts.max())) * 1.15)
    ax.set_title(f"offset histogram ({h.bin_seconds:.2f} s bins; {e.min_votes} votes needed)", fontsize=9)


def _candidates(ax: Axes, e: Explanation) -> None:
    ax.set_axis_off()
    ax.set_title("candidates weighed", fontsize=9)
    lines = []
    for c in e.candidates[:MAX_CANDIDATES]:
        score = "" if c.score is None else f", score {c.score:.1f}"
        lines.append(f"• {c.name} — {c.verdict} ({c.votes} votes{score})")
        lines.extend("   " + x for x in textwrap.wrap(c.reason, WRAP)[:3])
    if len(e.candidates) > MAX_CANDIDATES:
        lines.append(f"… and {len(e.candidates) - MAX_CANDIDATES} more")
    if not lines:
        lines = ["none: no stored track shares the clip's hashes"]
    t = ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=7.5, family="sans-serif", wrap=True)
    t.set_gid("candidates")


def explain_picture(e: Explanation, fmt: str) -> bytes:
    """The picture of ``e`` encoded as ``fmt`` ("png" or "svg")."""
    title, _ = caption(e)
    return figure_bytes(explain_figure(e), "svg" if fmt == "svg" else "png", title=title)
