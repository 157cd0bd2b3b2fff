"""The chart of plays per day: one drawing, on the PDF's first page (``pdf.py``) and as the PNG
the web app's Reports page shows (``chart_png``).

Drawn with matplotlib's object API (``Figure``, no pyplot): no process-wide backend or figure
registry is touched, so it runs in any thread and needs no display.
"""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from soundmark.services.reports import Report

BAR_COLOR = "#3b6ea8"
MAX_TICKS = 12  # day labels under the bars, at most
PNG_SIZE = (9.0, 3.2)  # inches
PNG_DPI = 100


def draw_plays_per_day(ax: Axes, report: Report) -> None:
    """The report's plays per day as bars on ``ax`` (days of its range, the report's zone)."""
    days = [d.day for d in report.days]
    ax.bar(range(len(days)), [d.plays for d in report.days], color=BAR_COLOR, width=0.8)
    ax.set_title("Plays per day", fontsize=12, loc="left")
    ax.set_ylabel("plays")
    step = max(1, len(days) // MAX_TICKS)
    ax.set_xticks(range(0, len(days), step))
    ax.set_xticklabels([days[i].strftime("%m-%d") for i in range(0, len(days), step)], fontsize=8, rotation=45)
    ax.set_xlim(-0.6, max(len(days), 7) - 0.4)  # a short range keeps narrow bars
    ax.spines[["top", "right"]].set_visible(False)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def chart_png(report: Report) -> bytes:
    """The chart alone as a PNG (white background, ``PNG_SIZE`` at ``PNG_DPI``)."""
    fig = Figure(figsize=PNG_SIZE, dpi=PNG_DPI, facecolor="white")
    draw_plays_per_day(fig.add_axes((0.07, 0.2, 0.9, 0.68)), report)
    out = io.BytesIO()
    fig.savefig(out, format="png", facecolor="white")
    return out.getvalue()
