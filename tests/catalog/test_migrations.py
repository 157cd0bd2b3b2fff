"""Schema migrations: statement splitting, fresh stores, and upgrading a version-1 store."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import soundmark.catalog.sqlite as catalog_sqlite
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.lyrics import search_lyrics
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE, MIGRATIONS, Catalog, split_sql
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.manifest import SegmentManifest
from soundmark.store import Store

V2_TABLES = {"tokens", "token_usage", "anonymous_usage", "lyrics_fts"}
V2_TRIGGERS = {"tracks_fts_insert", "tracks_fts_delete", "tracks_fts_update"}
CURRENT_TRIGGERS = V2_TRIGGERS | {"stream_events_plays"}  # migration 9: song events copied into the airplay log


def _names(conn: sqlite3.Connection, kind: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _make_v1(root: Path) -> None:
    """A catalog exactly as the version-1 code left it: migration 1 run by the old naive
    split-on-";" runner, with a few tracks in it."""
    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(root / CATALOG_FILE, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN IMMEDIATE")
    for stmt in filter(str.strip, MIGRATIONS[0].split(";")):
        conn.execute(stmt)
    conn.execute("PRAGMA user_version=1")
    conn.executemany(
        "INSERT INTO tracks(title, artist, lyrics, duration, content_hash, added_at) VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("Old Song", "Old Band", "words from before the upgrade", 100.0, "h1", 0.0),
            ("Another", "Old Band", None, 90.0, "h2", 0.0),
        ],
    )
    conn.execute("INSERT INTO track_external(track_id, key, value) VALUES (1, 'spotify_id', 'abc')")
    conn.execute("COMMIT")
    conn.close()


def test_split_sql_keeps_trigger_bodies_and_literals() -> None:
    script = """
    CREATE TABLE a (x TEXT DEFAULT 'semi;colon');  -- trailing; comment
    -- a comment; with semicolons; before
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a(x) SELECT 'b;' WHERE 0;
        DELETE FROM a WHERE 0;
    END;
    INSERT INTO a(x) VALUES ('"quoted; still"');
    -- the end; really
    """
    stmts = split_sql(script)
    assert len(stmts) == 3
    assert stmts[0].startswith("CREATE TABLE a") and "'semi;colon'" in stmts[0]
    assert "CREATE TRIGGER t" in stmts[1] and stmts[1].rstrip().endswith("END;")
    assert stmts[2].endswith("""VALUES ('"quoted; still"');""")
    conn = sqlite3.connect(":memory:")
    for s in stmts:
        conn.execute(s)
    assert [r[0] for r in conn.execute("SELECT x FROM a WHERE x LIKE '%quoted%'")] == ['"quoted; still"']
    assert split_sql("") == [] and split_sql("  -- nothing;\n  ") == []
    with pytest.raises(ValueError, match="incomplete"):
        split_sql("CREATE TABLE b (x); CREATE TRIGGER u AFTER INSERT ON b BEGIN SELECT 1;")


def test_every_migration_splits_into_complete_statements() -> None:
    for script in MIGRATIONS:
        for stmt in split_sql(script):
            assert sqlite3.complete_statement(stmt)


def test_fresh_catalog_is_current(tmp_path: Path) -> None:
    c = Catalog(tmp_path)
    try:
        assert _version(c.conn) == len(MIGRATIONS) >= 2
        assert _names(c.conn, "table") >= V2_TABLES
        assert _names(c.conn, "trigger") == CURRENT_TRIGGERS
    finally:
        c.close()
    again = Catalog(tmp_path)  # reopening applies nothing
    try:
        assert _version(again.conn) == len(MIGRATIONS)
    finally:
        again.close()


def test_upgrade_from_version_1(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _make_v1(root)
    c = Catalog(root)
    try:
        assert _version(c.conn) == len(MIGRATIONS)
        assert _names(c.conn, "table") >= V2_TABLES
        old = c.get_track(1)
        assert old is not None and old.meta.title == "Old Song" and old.meta.external == {"spotify_id": "abc"}
        # The rebuild indexed the rows that predate the migration.
        assert [t.id for t in search_lyrics(c, "before upgrade")] == [1]
        assert sorted(t.id for t in search_lyrics(c, "old band")) == [1, 2]
        c.conn.execute("INSERT INTO lyrics_fts(lyrics_fts, rank) VALUES ('integrity-check', 1)")
        # The triggers work on the upgraded store.
        with c.transaction():
            new = c.insert_track(TrackMeta(title="New Song", lyrics="after"), 10.0, None, "h3", 1)
            c.delete_track(2)
        assert [t.id for t in search_lyrics(c, "after")] == [new]
        assert [t.id for t in search_lyrics(c, "old band")] == [1]
        token, info = TokenStore(c).create("upgraded")
        assert TokenStore(c).authenticate(token) == info
    finally:
        c.close()


def test_upgrade_store_created_with_only_migration_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole Store made by a soundmark that knew only migration 1 opens with this one."""
    root = tmp_path / "db"
    with monkeypatch.context() as m:
        m.setattr(catalog_sqlite, "MIGRATIONS", MIGRATIONS[:1])
        with Store(root, FingerprintParams(), create=True) as store:
            assert _version(store.catalog.conn) == 1
            assert "tokens" not in _names(store.catalog.conn, "table")
            with store.catalog.transaction():
                store.catalog.insert_track(TrackMeta(title="Kept", artist="Band", lyrics="la la"), 5.0, None, "h", 1)
    with Store(root, FingerprintParams()) as store:  # params still match, schema upgraded
        assert _version(store.catalog.conn) == len(MIGRATIONS)
        assert [t.meta.title for t in search_lyrics(store.catalog, "la")] == ["Kept"]
        assert store.info().tracks == 1


def test_concurrent_openers_migrate_once(tmp_path: Path) -> None:
    root = tmp_path / "db"
    _make_v1(root)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def opener() -> None:
        try:
            barrier.wait()
            Catalog(root).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    c = Catalog(root)
    try:
        assert _version(c.conn) == len(MIGRATIONS)
        assert sorted(t.id for t in search_lyrics(c, "old")) == [1, 2]  # indexed once, not twice
        c.conn.execute("INSERT INTO lyrics_fts(lyrics_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        c.close()


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Catalog(tmp_path).close()
    bad = "CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(catalog_sqlite, "MIGRATIONS", [*MIGRATIONS, bad])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        Catalog(tmp_path)
    conn = sqlite3.connect(tmp_path / CATALOG_FILE)
    try:
        assert _version(conn) == len(MIGRATIONS)
        assert "half_done" not in _names(conn, "table")
    finally:
        conn.close()


def test_upgrade_to_autoincrement_never_reuses_an_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store from before migration 5 (plain INTEGER PRIMARY KEY): the rebuild keeps every row,
    external id, full-text entry and cascade, and new ids start above every id ever used —
    including removed tracks whose tombstones still hide postings in the segments."""
    root = tmp_path
    with monkeypatch.context() as m:
        m.setattr(catalog_sqlite, "MIGRATIONS", MIGRATIONS[:4])
        old = Catalog(root)
        with old.transaction():
            ids = [
                old.insert_track(TrackMeta(title=f"Song {i}", lyrics=f"words {i}"), 10.0, None, f"h{i}", 1)
                for i in range(3)
            ]
            old.conn.execute(
                "INSERT INTO track_external(track_id, key, value) VALUES (?, 'spotify_id', 'abc')", (ids[0],)
            )
            old.delete_track(ids[2])  # the highest id: the old schema hands it out again
            SegmentManifest(old.conn).add_tombstones([ids[2]])  # as the store's index does
        with old.transaction():
            reused = old.insert_track(TrackMeta(title="Probe"), 1.0, None, "probe", 1)
            assert reused == ids[2]  # the defect this migration removes
            old.conn.execute("DELETE FROM tracks WHERE id=?", (reused,))  # undo the probe (still tombstoned)
        old.close()
    c = Catalog(root)
    try:
        assert _version(c.conn) == len(MIGRATIONS)
        sql = c.conn.execute("SELECT sql FROM sqlite_master WHERE name='tracks'").fetchone()[0]
        assert "AUTOINCREMENT" in sql
        assert _names(c.conn, "trigger") == CURRENT_TRIGGERS
        assert "tracks_isrc" in _names(c.conn, "index")
        kept = c.get_track(ids[0])
        assert kept is not None and kept.meta.title == "Song 0" and kept.meta.external == {"spotify_id": "abc"}
        assert [t.id for t in search_lyrics(c, "words 1")] == [ids[1]]
        c.conn.execute("INSERT INTO lyrics_fts(lyrics_fts, rank) VALUES ('integrity-check', 1)")
        assert c.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert c.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with c.transaction():
            new = c.insert_track(TrackMeta(title="New"), 5.0, None, "h-new", 1)
        assert new > ids[2] and ids[2] in SegmentManifest(c.conn).tombstones()
        with c.transaction():  # removing the newest and adding again still never goes back
            c.delete_track(new)
            again = c.insert_track(TrackMeta(title="Again"), 5.0, None, "h-again", 1)
        assert again > new
        with c.transaction():  # the cascade to external ids survived the rebuild
            c.delete_track(ids[0])
        assert c.conn.execute("SELECT COUNT(*) FROM track_external").fetchone()[0] == 0
    finally:
        c.close()
