"""What every export shows of a play, a track and a station: one list of columns and one way to
write a duration, so the CSV, the JSON, the PDF and the CLI table agree."""

from __future__ import annotations

from soundmark.services.reports import Play, StationTotal, TrackTotal

PLAY_COLUMNS = ("radio_id", "token_id", "start", "play_length", "track_id", "artist", "title", "album", "label",
                "isrc", "upc", "audio_id", "score")  # fmt: skip
TRACK_COLUMNS = ("track_id", "artist", "title", "album", "label", "isrc", "upc", "audio_id", "external_ids",
                 "plays", "play_seconds", "stations")  # fmt: skip
STATION_COLUMNS = ("radio_id", "token_id", "token_name", "url", "plays", "play_seconds", "tracks")


def play_row(p: Play) -> dict[str, object]:
    """A play as the log lists it: ``start`` in ISO 8601 with the report zone's offset, an empty
    ``play_length`` when the play was reported at its start."""
    return {
        "radio_id": p.radio_id, "token_id": p.token_id, "start": p.start.isoformat(timespec="seconds"),
        "play_length": p.play_length, "track_id": p.track_id, "artist": p.artist, "title": p.title,
        "album": p.album, "label": p.label, "isrc": p.isrc, "upc": p.upc, "audio_id": p.audio_id, "score": p.score,
    }  # fmt: skip


def external_ids(t: TrackTotal) -> str:
    """The catalog's external ids as ``key=value`` pairs joined by ``; `` (sorted by key)."""
    return "; ".join(f"{k}={v}" for k, v in sorted(t.external.items()))


def track_row(t: TrackTotal) -> dict[str, object]:
    return {
        "track_id": t.track_id, "artist": t.artist, "title": t.title, "album": t.album, "label": t.label,
        "isrc": t.isrc, "upc": t.upc, "audio_id": t.audio_id, "external_ids": external_ids(t), "plays": t.plays,
        "play_seconds": t.seconds, "stations": len(t.stations),
    }  # fmt: skip


def station_row(s: StationTotal) -> dict[str, object]:
    return {
        "radio_id": s.radio_id, "token_id": s.token_id, "token_name": s.token_name, "url": s.url,
        "plays": s.plays, "play_seconds": s.seconds, "tracks": len(s.tracks),
    }  # fmt: skip


def duration(seconds: int) -> str:
    """``seconds`` as ``H:MM:SS`` (hours unbounded: a year of airplay reads ``8760:00:00``)."""
    h, rest = divmod(max(0, int(seconds)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
