"""Migrations of the tracks table: ids that are never reused, and the source files ingested.

Track ids must never be reused: a removed track's id is tombstoned and its postings stay in the
segments until compaction, so a new track under a recycled id would have its own fingerprints
hidden by that tombstone. ``INTEGER PRIMARY KEY`` alone lets SQLite hand out the id of the
last deleted row again; ``AUTOINCREMENT`` never does. SQLite cannot add it to an existing
table, so the table is rebuilt (new table, copy, drop, rename; the migration runner turns
foreign-key enforcement off around it so the drop cascades to nothing), its index and the
full-text triggers are recreated, and the id sequence starts above every id ever handed out:
the live ones and the tombstoned ones whose postings still exist.
"""

from __future__ import annotations

TRACK_IDS_MIGRATION = """
CREATE TABLE tracks_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT, artist TEXT, album TEXT, release_date TEXT, label TEXT,
    isrc TEXT, upc TEXT, lyrics TEXT, audio_id INTEGER UNIQUE,
    duration REAL NOT NULL,
    source TEXT,
    content_hash TEXT UNIQUE,
    n_hashes INTEGER NOT NULL DEFAULT 0,
    added_at REAL NOT NULL
);
INSERT INTO tracks_new(id, title, artist, album, release_date, label, isrc, upc, lyrics, audio_id,
                       duration, source, content_hash, n_hashes, added_at)
    SELECT id, title, artist, album, release_date, label, isrc, upc, lyrics, audio_id,
           duration, source, content_hash, n_hashes, added_at FROM tracks;
DROP TABLE tracks;
ALTER TABLE tracks_new RENAME TO tracks;
CREATE INDEX tracks_isrc ON tracks(isrc);
CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO lyrics_fts(rowid, title, artist, lyrics)
    VALUES (new.id, new.title, new.artist, new.lyrics);
END;
CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO lyrics_fts(lyrics_fts, rowid, title, artist, lyrics)
    VALUES ('delete', old.id, old.title, old.artist, old.lyrics);
END;
CREATE TRIGGER tracks_fts_update AFTER UPDATE OF id, title, artist, lyrics ON tracks BEGIN
    INSERT INTO lyrics_fts(lyrics_fts, rowid, title, artist, lyrics)
    VALUES ('delete', old.id, old.title, old.artist, old.lyrics);
    INSERT INTO lyrics_fts(rowid, title, artist, lyrics)
    VALUES (new.id, new.title, new.artist, new.lyrics);
END;
-- Start the sequence above every id ever used, tombstoned ones included.
DELETE FROM sqlite_sequence WHERE name = 'tracks';
INSERT INTO sqlite_sequence(name, seq) VALUES ('tracks', MAX(
    COALESCE((SELECT MAX(id) FROM tracks), 0),
    COALESCE((SELECT MAX(track_id) FROM tombstones), 0)
));
"""

# The files ``soundmark add`` took each track from (or found to be a duplicate of one), so that a
# resumed or repeated add skips them before decoding: by (path, size, mtime) when the file is
# untouched, else by the sha256 of its bytes. Removing a track forgets its files.
SOURCE_FILES_MIGRATION = """
CREATE TABLE source_files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    file_sha256 TEXT NOT NULL,
    track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE
);
CREATE INDEX source_files_sha256 ON source_files(file_sha256);
CREATE INDEX source_files_track ON source_files(track_id);
"""
