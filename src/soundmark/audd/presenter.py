"""The one presenter from a catalog match to AudD's result objects (recognize, findLyrics)."""

from __future__ import annotations

from soundmark.audd.metadata import provider_blocks
from soundmark.catalog.models import Track
from soundmark.match.recognizer import format_timecode
from soundmark.results import identifiers
from soundmark.services.recognition_pool import WorkerMatch


def song_link(base: str, track: Track) -> str:
    return f"{base}/song/{track.id}"


def recognition_result(
    match: WorkerMatch, track: Track, base: str, wanted: list[str], market: str
) -> dict[str, object]:
    """AudD's result object for one match.

    A custom-catalog track that has nothing but its ``audio_id`` answers ``{timecode,
    audio_id}`` as AudD does; a track with metadata answers the full result.
    """
    meta = track.meta
    timecode = format_timecode(match.offset_seconds)
    has_meta = any((meta.title, meta.artist, meta.album))
    if meta.audio_id is not None and not has_meta:
        return {"timecode": timecode, "audio_id": meta.audio_id, "score": match.score}
    result: dict[str, object] = {
        "artist": meta.artist or "",
        "title": meta.title or "",
        "album": meta.album or "",
        "release_date": meta.release_date or "",
        "label": meta.label or "",
        "timecode": timecode,
        "song_link": song_link(base, track),
    }
    result.update(identifiers(meta))
    result["score"] = match.score
    result["offset"] = round(match.offset_seconds, 2)
    if abs(match.time_rate - 1.0) > 1e-6 or abs(match.freq_rate - 1.0) > 1e-6:
        result["speed"] = match.time_rate
        result["pitch"] = match.freq_rate
    result.update(provider_blocks(track, wanted, market))
    if "lyrics" in wanted and meta.lyrics:
        result["lyrics"] = lyrics_hit(track, base)
    return result


def lyrics_hit(track: Track, base: str) -> dict[str, object]:
    """One findLyrics hit (Genius-like fields; ``song_id`` / ``artist_id`` are integers, as in
    AudD's schema; a catalog track has no artist id, so ``artist_id`` is 0)."""
    meta = track.meta
    title = meta.title or ""
    artist = meta.artist or ""
    return {
        "song_id": track.id,
        "artist_id": 0,
        "title": title,
        "title_with_featured": title,
        "full_title": f"{title} by {artist}" if artist else title,
        "artist": artist,
        "lyrics": meta.lyrics or "",
        "media": "[]",
        "song_link": song_link(base, track),
    }
