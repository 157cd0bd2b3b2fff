"""The catalog: tracks, external ids, and the store's bookkeeping, in SQLite or PostgreSQL.

The embedded store keeps it in ``catalog.sqlite`` inside the store directory: WAL mode lets
readers (the server, recognize) run while one writer (ingest) commits. A store directory that
holds a ``catalog.url`` file (written by ``Store`` from ``SOUNDMARK_CATALOG_URL``) has its
catalog in that PostgreSQL database instead, shared by every node (``catalog/sql.py`` gives both
the same connection surface, ``catalog/schema_postgres.py`` the schema). Every write that spans
tables happens in one transaction so a crash never leaves half a track.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from soundmark.catalog.models import Track, TrackMeta
from soundmark.catalog.schema_health import MIGRATION as _HEALTH_MIGRATION
from soundmark.catalog.schema_jobs import ATTEMPTS_MIGRATION as _JOB_ATTEMPTS_MIGRATION
from soundmark.catalog.schema_jobs import MIGRATION as _JOBS_MIGRATION
from soundmark.catalog.schema_nodes import MIGRATION as _NODES_MIGRATION
from soundmark.catalog.schema_plays import MIGRATION as _PLAYS_MIGRATION
from soundmark.catalog.schema_postgres import MIGRATIONS as PG_MIGRATIONS
from soundmark.catalog.schema_search import MIGRATION as _SEARCH_MIGRATION
from soundmark.catalog.schema_sessions import MIGRATION as _SESSIONS_MIGRATION
from soundmark.catalog.schema_streams import MIGRATION as _STREAMS_MIGRATION
from soundmark.catalog.schema_tracks import SOURCE_FILES_MIGRATION, TRACK_IDS_MIGRATION
from soundmark.catalog.sql import MIGRATION_LOCK_KEY, POSTGRESQL, SQLITE, Connection, PgConnection, dialect

CATALOG_FILE = "catalog.sqlite"
# In a store directory whose catalog is in PostgreSQL: the catalog URL (mode 0600: it may hold a password).
CATALOG_URL_FILE = "catalog.url"

_META_COLUMNS = [f.name for f in fields(TrackMeta) if f.name != "external"]

# Versioned migrations: index i brings the schema from version i to i + 1. Each is an SQL script
# run statement by statement (split with ``split_sql``, which keeps trigger bodies whole) inside
# one transaction together with the ``user_version`` bump. Append new ones; never edit old ones.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE tracks (
        id INTEGER PRIMARY KEY,
        title TEXT, artist TEXT, album TEXT, release_date TEXT, label TEXT,
        isrc TEXT, upc TEXT, lyrics TEXT, audio_id INTEGER UNIQUE,
        duration REAL NOT NULL,
        source TEXT,
        content_hash TEXT UNIQUE,
        n_hashes INTEGER NOT NULL DEFAULT 0,
        added_at REAL NOT NULL
    );
    CREATE INDEX tracks_isrc ON tracks(isrc);
    CREATE TABLE track_external (
        track_id INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
        key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (track_id, key)
    );
    CREATE TABLE segments (
        name TEXT PRIMARY KEY, postings INTEGER NOT NULL, tracks INTEGER NOT NULL,
        bytes INTEGER NOT NULL, created_at REAL NOT NULL
    );
    -- Removed tracks whose postings still sit in segments until compaction rewrites them.
    CREATE TABLE tombstones (track_id INTEGER PRIMARY KEY);
    """,
    # 2: API tokens and their usage counters, and a full-text index of titles, artists and lyrics.
    """
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        limit_per_month INTEGER,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX tokens_prefix ON tokens(prefix);
    -- period is the UTC month, 'YYYY-MM'.
    CREATE TABLE token_usage (
        token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
        period TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (token_id, period)
    );
    -- Requests without a token, per client address and UTC day ('YYYY-MM-DD').
    CREATE TABLE anonymous_usage (
        client TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (client, day)
    );
    CREATE INDEX anonymous_usage_day ON anonymous_usage(day);
    -- External-content FTS5 index over tracks (rowid = tracks.id), kept in sync by triggers.
    CREATE VIRTUAL TABLE lyrics_fts USING fts5(
        title, artist, lyrics,
        content='tracks', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    );
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
    -- Index the tracks that existed before this migration.
    INSERT INTO lyrics_fts(lyrics_fts) VALUES ('rebuild');
    """,
    _JOBS_MIGRATION,
    _STREAMS_MIGRATION,
    # 5: track ids are never reused (AUTOINCREMENT; a table rebuild).
    TRACK_IDS_MIGRATION,
    # 6: the source files of ingested tracks, so a resumed add skips them without decoding.
    SOURCE_FILES_MIGRATION,
    # 7: jobs count their attempts (a job that keeps taking the server down is failed).
    _JOB_ATTEMPTS_MIGRATION,
    # 8: the web app's admin sessions.
    _SESSIONS_MIGRATION,
    # 9: the airplay log (plays copied from stream results; reports read it).
    _PLAYS_MIGRATION,
    # 10: the health of each monitored stream (the Stations page reads it).
    _HEALTH_MIGRATION,
    # 11: the Catalog pages' album search, browse orders and plays by track.
    _SEARCH_MIGRATION,
    # 12: nodes, stream and job leases, callback claims, job audio (several nodes, one catalog).
    _NODES_MIGRATION,
]


def split_sql(script: str) -> list[str]:
    """Split an SQL script into complete statements.

    A plain ``split(";")`` would cut a trigger's ``BEGIN … END`` body (or a string literal or
    comment holding ";") apart, so pieces are joined until ``sqlite3.complete_statement`` says
    they form a whole statement. Comments are kept with the statement that follows them.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece
        if sqlite3.complete_statement(buffer + ";"):
            statements.append(buffer.strip() + ";")
            buffer = ""
        else:
            buffer += ";"
    tail = buffer.rstrip(";")
    if _strip_comments(tail):
        raise ValueError(f"incomplete SQL statement at the end of the script: {tail.strip()[:80]!r}")
    return [s for s in statements if _strip_comments(s.rstrip(";"))]


def _strip_comments(sql: str) -> str:
    """The text of ``sql`` with ``--`` line comments removed (enough to spot empty pieces)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines()).strip()


def catalog_url(root: str | os.PathLike[str]) -> str | None:
    """The PostgreSQL URL the store at ``root`` keeps its catalog at (None: its own SQLite file)."""
    path = Path(root) / CATALOG_URL_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def record_catalog_url(root: str | os.PathLike[str], url: str) -> None:
    """Write ``catalog.url`` (atomically, owner-readable only)."""
    path = Path(root) / CATALOG_URL_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(url + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def catalog_exists(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` is a store: a SQLite catalog file or a recorded PostgreSQL URL."""
    return (Path(root) / CATALOG_FILE).exists() or (Path(root) / CATALOG_URL_FILE).exists()


class Catalog:
    """One connection to a store's catalog (SQLite, or PostgreSQL when ``root`` records a URL)."""

    conn: Connection

    def __init__(self, root: Path, *, readonly: bool = False):
        url = catalog_url(root)
        if url is not None:
            self.conn = PgConnection(url, readonly=readonly)
            self.dialect = POSTGRESQL
            try:
                self._migrate_pg()
            except BaseException:
                self.conn.close()
                raise
            return
        self.dialect = SQLITE
        path = Path(root) / CATALOG_FILE
        if readonly:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        conn = self.conn
        assert isinstance(conn, sqlite3.Connection)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.row_factory = sqlite3.Row
        if not readonly:
            self._migrate()

    def close(self) -> None:
        self.conn.close()

    def _user_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Apply the missing migrations, each in its own transaction with its version bump.

        The version is read again under the write lock, so two processes opening an old store
        at once do not both apply the same migration. Foreign-key enforcement is off while they
        run (SQLite's procedure for rebuilding a table: dropping the old one must not cascade),
        and ``foreign_key_check`` must come back empty before each one commits.
        """
        if self._user_version() >= len(MIGRATIONS):
            return
        self.conn.execute("PRAGMA foreign_keys=OFF")  # only takes effect outside a transaction
        try:
            while self._user_version() < len(MIGRATIONS):
                with self.transaction():
                    version = self._user_version()
                    if version >= len(MIGRATIONS):
                        break
                    for stmt in split_sql(MIGRATIONS[version]):
                        self.conn.execute(stmt)
                    broken = self.conn.execute("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise sqlite3.IntegrityError(
                            f"migration {version + 1} would break {len(broken)} foreign keys: {broken[:3]}"
                        )
                    self.conn.execute(f"PRAGMA user_version={version + 1}")
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    def _migrate_pg(self) -> None:
        """The PostgreSQL schema's missing migrations, each in one write transaction (the write
        lock keeps two nodes starting at once from applying the same one)."""

        def version() -> int:
            row = self.conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
            if not row[0]:
                return 0
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return 0 if row is None else int(row[0])

        if version() >= len(PG_MIGRATIONS):
            return
        if getattr(self.conn, "readonly", False):
            raise sqlite3.OperationalError("the PostgreSQL catalog is not migrated yet: open it read-write first")
        # A session lock around the whole run, and the version read in a transaction of its own
        # after it: a read in the migration's own transaction could see the schema as it was
        # before the lock was granted (PostgreSQL's catalog snapshot), and migrate it twice.
        self.conn.execute("SELECT pg_advisory_lock(?)", (MIGRATION_LOCK_KEY,))
        try:
            while (current := version()) < len(PG_MIGRATIONS):
                with self.transaction():
                    self.conn.execute(PG_MIGRATIONS[current])
                    self.conn.execute(
                        "INSERT INTO meta(key, value) VALUES ('schema_version', ?)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(current + 1),),
                    )
        finally:
            self.conn.execute("SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK_KEY,))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """An IMMEDIATE transaction: it takes the write lock up front, so it cannot deadlock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:
            # A commit that fails (a full disk) may leave the transaction open: end it.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def data_version(self) -> int:
        """Changes whenever another connection commits; cheap to poll."""
        return data_version(self.conn)

    # --- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # --- tracks -------------------------------------------------------------------------------
    def reserve_track_ids(self, n: int) -> int | None:
        """PostgreSQL: reserve ``n`` consecutive track ids in a short transaction of their own
        (they are never handed out again, used or not) and return the first; SQLite: None (its
        writer takes the next ids of ``AUTOINCREMENT`` under the store's writer lock)."""
        if self.dialect != POSTGRESQL:
            return None
        with self.transaction():
            row = self.conn.execute(
                "UPDATE id_blocks SET next_id = next_id + ? WHERE name = 'tracks' RETURNING next_id - ?", (n, n)
            ).fetchone()
        return int(row[0])

    def insert_track(
        self,
        meta: TrackMeta,
        duration: float,
        source: str | None,
        content_hash: str | None,
        n_hashes: int,
        *,
        track_id: int | None = None,
    ) -> int:
        """Insert inside the caller's transaction; returns the new id (``track_id`` when given:
        one ``reserve_track_ids`` handed out)."""
        cols = [*_META_COLUMNS, "duration", "source", "content_hash", "n_hashes", "added_at"]
        values = [getattr(meta, c) for c in _META_COLUMNS]
        values += [duration, source, content_hash, n_hashes, time.time()]
        if track_id is not None:
            cols, values = ["id", *cols], [track_id, *values]
        marks = ",".join("?" * len(cols))
        row = self.conn.execute(
            f"INSERT INTO tracks({','.join(cols)}) VALUES ({marks}) RETURNING id", values
        ).fetchone()
        new_id = int(row[0])
        self._write_external(new_id, meta.external)
        return new_id

    def update_meta(self, track_id: int, meta: TrackMeta) -> None:
        sets = ",".join(f"{c}=?" for c in _META_COLUMNS)
        self.conn.execute(
            f"UPDATE tracks SET {sets} WHERE id=?", [*(getattr(meta, c) for c in _META_COLUMNS), track_id]
        )
        self.conn.execute("DELETE FROM track_external WHERE track_id=?", (track_id,))
        self._write_external(track_id, meta.external)

    def _write_external(self, track_id: int, external: dict[str, str]) -> None:
        self.conn.executemany(
            "INSERT INTO track_external(track_id, key, value) VALUES (?, ?, ?)",
            [(track_id, k, str(v)) for k, v in external.items() if v not in (None, "")],
        )

    def delete_track(self, track_id: int) -> bool:
        """Delete inside the caller's transaction (the store hides the track's postings through
        its index in the same transaction)."""
        cur = self.conn.execute("DELETE FROM tracks WHERE id=?", (track_id,))
        return bool(cur.rowcount)

    def get_track(self, track_id: int) -> Track | None:
        tracks = self.get_tracks([track_id])
        return tracks.get(track_id)

    def get_tracks(self, ids: Iterable[int]) -> dict[int, Track]:
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.conn.execute(f"SELECT * FROM tracks WHERE id IN ({marks})", ids).fetchall()
        ext: dict[int, dict[str, str]] = {}
        for r in self.conn.execute(f"SELECT track_id, key, value FROM track_external WHERE track_id IN ({marks})", ids):
            ext.setdefault(int(r[0]), {})[r[1]] = r[2]
        return {int(r["id"]): self._row_to_track(r, ext.get(int(r["id"]), {})) for r in rows}

    @staticmethod
    def _row_to_track(row: Any, external: dict[str, str]) -> Track:
        meta = TrackMeta(**{c: row[c] for c in _META_COLUMNS}, external=external)
        return Track(
            id=int(row["id"]),
            meta=meta,
            duration=float(row["duration"]),
            source=row["source"],
            content_hash=row["content_hash"],
            n_hashes=int(row["n_hashes"]),
        )

    def find_by_hash(self, content_hash: str) -> int | None:
        row = self.conn.execute("SELECT id FROM tracks WHERE content_hash=?", (content_hash,)).fetchone()
        return None if row is None else int(row[0])

    def find_by_audio_id(self, audio_id: int) -> int | None:
        row = self.conn.execute("SELECT id FROM tracks WHERE audio_id=?", (audio_id,)).fetchone()
        return None if row is None else int(row[0])

    def list_tracks(self, limit: int = 1000, offset: int = 0) -> list[Track]:
        rows = self.conn.execute("SELECT id FROM tracks ORDER BY id LIMIT ? OFFSET ?", (limit, offset))
        ids = [int(r[0]) for r in rows]
        tracks = self.get_tracks(ids)
        return [tracks[i] for i in ids if i in tracks]

    def totals(self) -> tuple[int, float]:
        n, hours = self.conn.execute("SELECT COUNT(*), COALESCE(SUM(duration), 0) FROM tracks").fetchone()
        return int(n), float(hours) / 3600.0

    # --- source files -------------------------------------------------------------------------
    def known_source(self, path: str, size: int, mtime_ns: int) -> int | None:
        """The track an unchanged file (same path, size and mtime) was ingested as, if any."""
        row = self.conn.execute(
            "SELECT track_id FROM source_files WHERE path=? AND size=? AND mtime_ns=?", (path, size, mtime_ns)
        ).fetchone()
        return None if row is None else int(row[0])

    def find_source_by_sha256(self, file_sha256: str) -> int | None:
        """The track some file with exactly these bytes was ingested as, if any."""
        row = self.conn.execute("SELECT track_id FROM source_files WHERE file_sha256=?", (file_sha256,)).fetchone()
        return None if row is None else int(row[0])

    def record_source(self, path: str, size: int, mtime_ns: int, file_sha256: str, track_id: int) -> None:
        """Remember (inside the caller's transaction) that this file holds the audio of ``track_id``."""
        self.conn.execute(
            "INSERT INTO source_files(path, size, mtime_ns, file_sha256, track_id) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
            " file_sha256 = excluded.file_sha256, track_id = excluded.track_id",
            (path, size, mtime_ns, file_sha256, track_id),
        )


def data_version(conn: Connection) -> int:
    """A number that changes when another connection commits, cheap to poll: SQLite's
    ``data_version``; on PostgreSQL the server's WAL position (it moves with every commit of any
    connection, this one's too: a spurious change only costs the caller one more read)."""
    if dialect(conn) == POSTGRESQL:
        return int(conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0])
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
