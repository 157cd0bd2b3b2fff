"""The one presenter: every song object soundmark answers, built from a match, a tracklist segment
or a stream play, as the response models of models.py (``wire()`` them at the transport edge).

- ``recognition_result``: a ``recognize`` match (HTTP and WebSocket);
- ``stream_song``: a song of a stream callback / longpoll event (AudD's 0-100 score);
- ``enterprise_song``: a song playing in one chunk of an enterprise answer;
- ``lyrics_hit``: a ``findLyrics`` hit (and a song's ``lyrics`` block);
- ``tracklist_entry``: a segment of a long recording (``soundmark scan``, ``GET /jobs/<id>``);
- ``match_record``: a match as ``soundmark recognize --json`` prints it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, TypeVar

from soundmark.audd.metadata import provider_blocks
from soundmark.audd.models import (
    PROVIDERS,
    EnterpriseSong,
    LyricsHit,
    MatchRecord,
    Song,
    StreamSong,
    TracklistEntry,
    wire,
)
from soundmark.catalog.models import Track, TrackMeta
from soundmark.match.recognizer import Match, format_timecode
from soundmark.match.scan import clock
from soundmark.match.tracklist import TrackSegment
from soundmark.services.recognition_pool import WorkerMatch

_TRACKLIST_META = ("artist", "title", "album", "release_date", "label", "isrc", "upc", "audio_id")


RATE_SHOWN = 0.005  # a speed or pitch this far from 1 is reported


def shown_rates(time_rate: float, freq_rate: float) -> tuple[float, float] | None:
    """The (speed, pitch) every output reports, or None when the query played unchanged: rates
    are estimated to about 0.5 % (verify.refine_warp), so both nearer 1 than RATE_SHOWN are 1."""
    if abs(time_rate - 1.0) >= RATE_SHOWN or abs(freq_rate - 1.0) >= RATE_SHOWN:
        return time_rate, freq_rate
    return None


def song_link(base: str, track: Track) -> str:
    return f"{base}/song/{track.id}"


def has_metadata(meta: TrackMeta) -> bool:
    return any((meta.title, meta.artist, meta.album))


def recognition_result(match: WorkerMatch, track: Track, base: str, wanted: list[str], market: str) -> Song:
    """AudD's result object for one match.

    A custom-catalog track that has nothing but its ``audio_id`` answers ``{timecode,
    audio_id}`` as AudD does; a track with metadata answers the full result.
    """
    fields = _match_fields(match, track, base, wanted, market)
    return _ordered(Song(**fields), fields)


def stream_song(match: WorkerMatch, track: Track, base: str, wanted: list[str], market: str, score: int) -> StreamSong:
    """A song of a stream callback: the recognize result with AudD's 0-100 integer ``score``."""
    fields = {**_match_fields(match, track, base, wanted, market), "score": score}
    return _ordered(StreamSong(**fields), fields)


def _match_fields(match: WorkerMatch, track: Track, base: str, wanted: list[str], market: str) -> dict[str, Any]:
    meta = track.meta
    timecode = format_timecode(match.offset_seconds)
    if meta.audio_id is not None and not has_metadata(meta):
        return {"timecode": timecode, "audio_id": meta.audio_id, "score": match.score}
    fields: dict[str, Any] = {
        **_described(meta),
        "timecode": timecode,
        "song_link": song_link(base, track),
        **_identifiers(meta),
        "score": match.score,
        "offset": round(match.offset_seconds, 2),
    }
    rates = shown_rates(match.time_rate, match.freq_rate)
    if rates is not None:
        fields["speed"], fields["pitch"] = rates
    fields.update(provider_blocks(track, wanted, market))
    if "lyrics" in wanted and meta.lyrics:
        fields["lyrics"] = lyrics_hit(track, base)
    return fields


def enterprise_song(
    seg: TrackSegment,
    track: Track,
    chunk_start: float,
    chunk_end: float,
    base: str,
    *,
    accurate_offsets: bool,
    wanted: list[str],
    market: str,
) -> EnterpriseSong:
    """The song ``seg`` plays in the chunk ``[chunk_start, chunk_end)`` (seconds of the file):
    its metadata, ``timecode`` (where in the song the chunk's part starts), ``score`` (0-100)
    and, with ``accurate_offsets``, where it starts and ends inside the chunk (milliseconds;
    0 and the chunk's length when it plays through)."""
    meta = track.meta
    overlap_start = max(seg.start, chunk_start)
    ref_at = seg.ref_start + (overlap_start - seg.start) * seg.speed
    fields: dict[str, Any] = {}
    described = has_metadata(meta)
    if described or meta.audio_id is None:
        fields.update(_described(meta))
        fields.update(_identifiers(meta, audio_id=False))
        fields["song_link"] = song_link(base, track)
    if meta.audio_id is not None:
        fields["audio_id"] = meta.audio_id
    fields["score"] = min(100, round(seg.score))
    fields["timecode"] = format_timecode(ref_at)
    if accurate_offsets:
        chunk_ms = round((chunk_end - chunk_start) * 1000)
        fields["start_offset"] = min(chunk_ms, max(0, round((seg.start - chunk_start) * 1000)))
        fields["end_offset"] = min(chunk_ms, max(0, round((seg.end - chunk_start) * 1000)))
    if abs(seg.speed - 1.0) >= 0.005:
        fields["speed"] = round(seg.speed, 4)
    if described:
        fields.update(provider_blocks(track, wanted, market))
    return _ordered(EnterpriseSong(**fields), fields)


def lyrics_hit(track: Track, base: str) -> LyricsHit:
    """One findLyrics hit (Genius-like fields; ``song_id`` / ``artist_id`` are integers, as in
    AudD's schema; a catalog track has no artist id, so ``artist_id`` is 0)."""
    meta = track.meta
    title = meta.title or ""
    artist = meta.artist or ""
    return LyricsHit(
        song_id=track.id,
        artist_id=0,
        title=title,
        title_with_featured=title,
        full_title=f"{title} by {artist}" if artist else title,
        artist=artist,
        lyrics=meta.lyrics or "",
        media="[]",
        song_link=song_link(base, track),
    )


def tracklist_entry(seg: TrackSegment, track: Track | None, base: str | None = None) -> TracklistEntry:
    """One tracklist entry with the track's known metadata; ``song_link`` when ``base`` is given
    (the API) and the track still exists."""
    fields: dict[str, Any] = {"start_time": clock(seg.start), "end_time": clock(seg.end), **seg.to_dict()}
    if track is not None:
        for key in _TRACKLIST_META:
            value = getattr(track.meta, key)
            if value not in (None, ""):
                fields[key] = value
        if base is not None:
            fields["song_link"] = song_link(base, track)
    return TracklistEntry(**fields)


# The columns of a tracklist as CSV (``soundmark scan --csv``, a job's CSV on the web app).
TRACKLIST_COLUMNS = (
    "start_time", "end_time", "start", "end", "artist", "title", "album", "isrc", "track_id",
    "ref_start", "ref_end", "speed", "score",
)  # fmt: skip


def tracklist_csv(entries: Iterable[TracklistEntry]) -> str:
    """The tracklist as CSV (``TRACKLIST_COLUMNS``, a header row first)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=TRACKLIST_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for e in entries:
        w.writerow(wire(e))
    return out.getvalue()


def match_record(m: Match) -> MatchRecord:
    """A match for ``soundmark recognize --json``: every metadata field (``null`` when unknown),
    the engine's figures, and the ids the catalog knows."""
    meta = m.track.meta
    speed, pitch = shown_rates(m.time_rate, m.freq_rate) or (1.0, 1.0)
    return MatchRecord(
        artist=meta.artist,
        title=meta.title,
        album=meta.album,
        release_date=meta.release_date,
        label=meta.label,
        timecode=m.timecode,
        offset=round(m.offset_seconds, 2),
        score=m.score,
        track_id=m.track.id,
        speed=speed,
        pitch=pitch,
        **_identifiers(meta),
    )


def _described(meta: TrackMeta) -> dict[str, Any]:
    """The metadata fields every described song carries, ``""`` when unknown (AudD's way)."""
    return {
        "artist": meta.artist or "",
        "title": meta.title or "",
        "album": meta.album or "",
        "release_date": meta.release_date or "",
        "label": meta.label or "",
    }


def _identifiers(meta: TrackMeta, *, audio_id: bool = True) -> dict[str, Any]:
    """The optional ids of a song (isrc, upc, custom-catalog audio_id), when known."""
    out: dict[str, Any] = {}
    if meta.isrc:
        out["isrc"] = meta.isrc
    if meta.upc:
        out["upc"] = meta.upc
    if audio_id and meta.audio_id is not None:
        out["audio_id"] = meta.audio_id
    return out


S = TypeVar("S", Song, StreamSong, EnterpriseSong)


def _ordered(song: S, fields: dict[str, Any]) -> S:
    """``song`` with its provider blocks sent in the order they were built (``return``'s)."""
    song.order_blocks(tuple(k for k in fields if k in PROVIDERS))
    return song
