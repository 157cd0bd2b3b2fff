"""The report as JSON: totals, plays per day, stations, the top tracks and one page of the play
log (``soundmark report --json`` and ``GET /reports.json``, which the web page reads)."""

from __future__ import annotations

from soundmark.reports.fields import play_row, station_row, track_row
from soundmark.services.reports import Play, Report


def report_json(report: Report, *, top: int, log: list[Play], log_offset: int) -> dict[str, object]:
    """``top`` tracks (most played first) and the play log's page ``log`` starting at ``log_offset``."""
    rng = report.range
    return {
        "from": rng.start.isoformat(),
        "to": rng.end.isoformat(),
        "to_excluded": True,
        "tz": rng.tz,
        "radio_id": rng.radio_id,
        "plays": report.plays,
        "play_seconds": report.seconds,
        "plays_without_length": report.plays_without_length,
        "tracks_played": len(report.tracks),
        "days": [{"day": d.day.isoformat(), "plays": d.plays, "play_seconds": d.seconds} for d in report.days],
        "stations": [station_row(s) for s in report.stations],
        "top_tracks": [track_row(t) for t in report.top_tracks(top)],
        "log": {"offset": log_offset, "count": len(log), "total": report.plays, "plays": [play_row(p) for p in log]},
    }
