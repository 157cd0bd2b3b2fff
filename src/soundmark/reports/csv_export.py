"""The CSV exports: the play log (one row per play, what SoundExchange-style reports are built
from) and the per-track summary. Both write to any text stream, row by row."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from soundmark.reports.fields import PLAY_COLUMNS, TRACK_COLUMNS, play_row, track_row
from soundmark.services.reports import Play, Report


def write_play_log(plays: Iterable[Play], out: TextIO) -> int:
    """Write the header and one row per play; returns the number of plays written."""
    w = csv.DictWriter(out, fieldnames=PLAY_COLUMNS, lineterminator="\n")
    w.writeheader()
    n = 0
    for p in plays:
        w.writerow(play_row(p))
        n += 1
    return n


def write_track_summary(report: Report, out: TextIO) -> int:
    """Write the header and one row per track, most played first; returns the number of tracks."""
    w = csv.DictWriter(out, fieldnames=TRACK_COLUMNS, lineterminator="\n")
    w.writeheader()
    for t in report.tracks:
        w.writerow(track_row(t))
    return len(report.tracks)
