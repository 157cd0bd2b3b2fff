"""Migration 10: the health of each monitored stream, as the monitor last saw it.

The monitor may run in another process (``serve --role monitor``), so the web app's Stations page
reads what it shows from here, never from the monitor's memory. One row per stream (deleted with
it), rewritten by ``streams/health.py`` through the server's one writer at a bounded rate: a change
of state (connected, now playing, silence) at most every ``URGENT_SECONDS``, the rest (last audio,
seconds of silence) at most every ``ROUTINE_SECONDS``. ``updated_at`` tells how fresh the row is
(a row that stopped moving means the monitor is not running).
"""

MIGRATION = """
CREATE TABLE stream_health (
    stream_id INTEGER PRIMARY KEY REFERENCES streams(id) ON DELETE CASCADE,
    connected INTEGER NOT NULL DEFAULT 0,   -- audio is being received now
    since REAL,                             -- unix time the stream connected (or went down)
    last_audio_at REAL,                     -- unix time of the last block of audio read
    silent_seconds REAL NOT NULL DEFAULT 0, -- seconds of silence up to now (0 while music plays)
    silence INTEGER NOT NULL DEFAULT 0,     -- silence lasted stream_silence_seconds (notification 651)
    reconnects INTEGER NOT NULL DEFAULT 0,  -- connections after the first, since the monitor started it
    last_error TEXT,                        -- why the last connection ended or failed
    error_at REAL,
    now_track_id INTEGER,                   -- the song playing now (no foreign key: tracks may go)
    now_since REAL,                         -- unix time it was first heard
    updated_at REAL NOT NULL
);
"""
