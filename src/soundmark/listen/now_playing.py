"""The now-playing file of a streaming overlay (OBS's text source "read from file").

It holds one line, ``Artist — Title`` of the song playing, and is empty when nothing plays. Each
change is written to a temporary file beside it and renamed over it, so a reader never sees a
half-written line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from soundmark.match.recognizer import Match


def song_line(match: Match) -> str:
    """``Artist — Title`` (whichever of them the catalog knows)."""
    meta = match.track.meta
    return " — ".join(x for x in (meta.artist, meta.title) if x) or f"track {match.track.id}"


class NowPlaying:
    def __init__(self, path: Path) -> None:
        self.path = path

    def show(self, text: str) -> None:
        """Replace the file's content with ``text`` (one line, no newline; empty: nothing plays)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from an overlay run as another user
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        self.show("")
