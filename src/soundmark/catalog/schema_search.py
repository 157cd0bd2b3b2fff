"""Migration: what the web app's Catalog pages search and browse by, so that no page scans the
whole catalog.

- ``album_fts``: a full-text index of albums (``lyrics_fts`` holds titles, artists and lyrics;
  AudD's ``findLyrics`` reads that one, so albums get their own rather than changing what it
  finds), external content on ``tracks``; the full-text triggers of ``tracks`` are redefined
  (same names) to keep both indexes in sync, so a later rebuild of ``tracks`` must recreate
  them as they are here;
- ``tracks_by_title`` / ``tracks_by_artist``: browse order (case-insensitive, a missing title or
  artist sorts as ""), with the id last so that every row has its own place: a page starts
  after the last row of the one before (keyset paging, no OFFSET);
- ``plays_by_track``: a track's plays in the airplay log ("where it was heard") without reading
  the log of every station (``plays`` is indexed by day and station only).

``catalog/browse.py`` writes its queries with exactly these expressions, so SQLite uses them.
"""

from __future__ import annotations

TITLE_KEY = "coalesce(title, '') COLLATE NOCASE"
ARTIST_KEY = "coalesce(artist, '') COLLATE NOCASE"

MIGRATION = f"""
CREATE VIRTUAL TABLE album_fts USING fts5(
    album,
    content='tracks', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
DROP TRIGGER tracks_fts_insert;
DROP TRIGGER tracks_fts_delete;
DROP TRIGGER tracks_fts_update;
CREATE TRIGGER tracks_fts_insert AFTER INSERT ON tracks BEGIN
    INSERT INTO lyrics_fts(rowid, title, artist, lyrics) VALUES (new.id, new.title, new.artist, new.lyrics);
    INSERT INTO album_fts(rowid, album) VALUES (new.id, new.album);
END;
CREATE TRIGGER tracks_fts_delete AFTER DELETE ON tracks BEGIN
    INSERT INTO lyrics_fts(lyrics_fts, rowid, title, artist, lyrics)
    VALUES ('delete', old.id, old.title, old.artist, old.lyrics);
    INSERT INTO album_fts(album_fts, rowid, album) VALUES ('delete', old.id, old.album);
END;
CREATE TRIGGER tracks_fts_update AFTER UPDATE OF id, title, artist, lyrics, album ON tracks BEGIN
    INSERT INTO lyrics_fts(lyrics_fts, rowid, title, artist, lyrics)
    VALUES ('delete', old.id, old.title, old.artist, old.lyrics);
    INSERT INTO lyrics_fts(rowid, title, artist, lyrics) VALUES (new.id, new.title, new.artist, new.lyrics);
    INSERT INTO album_fts(album_fts, rowid, album) VALUES ('delete', old.id, old.album);
    INSERT INTO album_fts(rowid, album) VALUES (new.id, new.album);
END;
INSERT INTO album_fts(album_fts) VALUES ('rebuild');
CREATE INDEX tracks_by_title ON tracks({TITLE_KEY}, id);
CREATE INDEX tracks_by_artist ON tracks({ARTIST_KEY}, {TITLE_KEY}, id);
CREATE INDEX plays_by_track ON plays(track_id, heard_at);
"""
