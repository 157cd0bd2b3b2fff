"""Matches → AudD-shaped result objects (shared by the CLI and the API)."""

from __future__ import annotations

from soundmark.catalog.models import TrackMeta
from soundmark.match.recognizer import Match


def identifiers(meta: TrackMeta) -> dict[str, object]:
    """The optional ids of an AudD result (isrc, upc, custom-catalog audio_id), when known."""
    out: dict[str, object] = {}
    if meta.isrc:
        out["isrc"] = meta.isrc
    if meta.upc:
        out["upc"] = meta.upc
    if meta.audio_id is not None:
        out["audio_id"] = meta.audio_id
    return out


def match_to_result(m: Match) -> dict[str, object]:
    meta = m.track.meta
    result: dict[str, object] = {
        "artist": meta.artist,
        "title": meta.title,
        "album": meta.album,
        "release_date": meta.release_date,
        "label": meta.label,
        "timecode": m.timecode,
        "offset": round(m.offset_seconds, 2),
        "score": m.score,
        "track_id": m.track.id,
        "speed": m.time_rate,
        "pitch": m.freq_rate,
    }
    result.update(identifiers(meta))
    return result
