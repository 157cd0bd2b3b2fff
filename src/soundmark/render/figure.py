"""A figure as PNG or SVG bytes, with explicit canvases (Agg, SVG): no pyplot, no display."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Literal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

Format = Literal["png", "svg"]
FORMATS: tuple[Format, ...] = ("png", "svg")
MEDIA_TYPES: dict[Format, str] = {"png": "image/png", "svg": "image/svg+xml"}
DPI = 100


def format_of(path: str | Path) -> Format:
    """The picture format a file name asks for by its extension (.png or .svg)."""
    ext = Path(path).suffix.lower().lstrip(".")
    for f in FORMATS:
        if ext == f:
            return f
    raise ValueError(f"{path}: the picture's name must end in .png or .svg")


def figure_bytes(fig: Figure, fmt: Format, *, title: str = "") -> bytes:
    """``fig`` encoded as ``fmt``; ``title`` goes into the file's metadata."""
    buf = io.BytesIO()
    if fmt == "svg":
        meta = {"Creator": "soundmark"} | ({"Title": title} if title else {})
        FigureCanvasSVG(fig).print_svg(buf, metadata=meta)
    else:
        FigureCanvasAgg(fig).print_png(buf, metadata={"Title": title, "Software": "soundmark"})
    return buf.getvalue()


def write_figure(fig: Figure, path: str | Path, *, title: str = "") -> Format:
    """Write ``fig`` to ``path`` in the format its extension names; returns that format."""
    fmt = format_of(path)
    Path(path).write_bytes(figure_bytes(fig, fmt, title=title))
    return fmt
