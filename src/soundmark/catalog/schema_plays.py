"""Migration: the airplay log — one row per song a monitored stream played, kept for reports.

``stream_events`` is a bounded queue (``stream_events_max``; the oldest finished events are
deleted), so a month's report for a few stations would lose its first weeks. Every ``result``
event the monitor writes (one per play: at its end, or at its start with ``callbacks=before``)
is copied into ``plays`` by a trigger, inside the same transaction as the event; pruning the
queue leaves ``plays`` alone. The migration also copies the results already in the queue.

What a row holds is what the callback said, read from its JSON (callbacks.py ``result_payload``,
presenter.py ``stream_song``): ``heard_at`` is the result's ``timestamp`` as written, local time
in the zone ``callback_timezone`` named (services/reports.py reads it back in that zone);
``play_length`` is NULL for a play reported at its start; ``track_id`` is the id that ends the
song's ``song_link`` (``{base}/song/{id}``), or the track of a metadata-less song's
``audio_id``. ``track_id`` has no foreign key: a play stays in the log after its track is removed,
with the title and ids it was reported with.
"""

from __future__ import annotations

_SONG = "json_extract({p}, '$.result.results[0]')"
_LINK = "json_extract({p}, '$.result.results[0].song_link')"


def _select(p: str) -> str:
    """The values of one plays row, read from the payload column ``p`` of an event."""
    link = _LINK.format(p=p)
    song = f"json_extract({p}, '$.result.results[0].%s')"
    return f"""
        json_extract({p}, '$.result.timestamp'),
        json_extract({p}, '$.result.play_length'),
        CASE
            WHEN {link} LIKE '%/song/%' THEN CAST(substr({link}, length(rtrim({link}, '0123456789')) + 1) AS INTEGER)
            WHEN {song % "audio_id"} IS NOT NULL
                THEN (SELECT id FROM tracks WHERE audio_id = {song % "audio_id"})
        END,
        {song % "title"}, {song % "artist"}, {song % "album"}, {song % "label"}, {song % "isrc"}, {song % "upc"},
        {song % "audio_id"}, {song % "score"}"""


_COLUMNS = (
    "event_id, token_id, radio_id, created_ms, heard_at, play_length, track_id, title, artist, album, label, isrc, "
    "upc, audio_id, score"
)


def _is_play(kind: str, p: str) -> str:
    """An event that reports a song: a result with at least one song and a timestamp."""
    return (
        f"{kind} = 'result' AND {_SONG.format(p=p)} IS NOT NULL AND json_extract({p}, '$.result.timestamp') IS NOT NULL"
    )


MIGRATION = f"""
CREATE TABLE plays (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL UNIQUE,   -- the stream_events row it was copied from (pruned later)
    token_id INTEGER NOT NULL,
    radio_id INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,        -- when the event was written (UTC milliseconds)
    heard_at TEXT NOT NULL,             -- 'YYYY-MM-DD HH:MM:SS', local time of callback_timezone
    play_length INTEGER,                -- seconds heard; NULL when reported at the start
    track_id INTEGER,                   -- the catalog track (no foreign key: plays outlive tracks)
    title TEXT, artist TEXT, album TEXT, label TEXT, isrc TEXT, upc TEXT, audio_id INTEGER,
    score INTEGER                       -- AudD's 0-100 score of the best match
);
CREATE INDEX plays_heard_at ON plays(heard_at);
CREATE INDEX plays_radio_heard_at ON plays(radio_id, heard_at);
CREATE TRIGGER stream_events_plays AFTER INSERT ON stream_events
WHEN {_is_play("new.kind", "new.payload")}
BEGIN
    INSERT OR IGNORE INTO plays({_COLUMNS})
    SELECT new.id, new.token_id, new.radio_id, new.created_ms, {_select("new.payload")};
END;
INSERT OR IGNORE INTO plays({_COLUMNS})
    SELECT id, token_id, radio_id, created_ms, {_select("payload")}
    FROM stream_events WHERE {_is_play("kind", "payload")} ORDER BY id;
"""
