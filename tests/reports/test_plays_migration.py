"""Migration 9 copies the song results already in the event queue into the airplay log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from airplay import EXPECTED_PLAYS, PLAYS, describe_tracks, record_plays

from soundmark.catalog.sqlite import MIGRATIONS, Catalog, split_sql
from soundmark.catalog.writer import LocalDatabase
from soundmark.services.reports import ReportRange, ReportService


def _objects(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
    rows = conn.execute("SELECT name, type, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    return {name: (kind, sql) for name, kind, sql in rows}


def _columns(conn: sqlite3.Connection, tables: set[str]) -> dict[str, set[str]]:
    return {t: {str(r[1]) for r in conn.execute(f'PRAGMA table_info("{t}")')} for t in tables}


def roll_back_to(conn: sqlite3.Connection, version: int) -> None:
    """Drop what migrations ``version`` and later created (found by running them on an empty
    database: objects, and columns added to older tables) and set ``user_version``: the catalog
    as it was before those migrations."""
    scratch = sqlite3.connect(":memory:")
    for script in MIGRATIONS[:version]:
        for stmt in split_sql(script):
            scratch.execute(stmt)
    before = _objects(scratch)
    tables = {n for n, (k, _sql) in before.items() if k == "table"}
    columns_before = _columns(scratch, tables)
    for script in MIGRATIONS[version:]:
        for stmt in split_sql(script):
            scratch.execute(stmt)
    after = _objects(scratch)
    created = {n: v for n, v in after.items() if n not in before}
    redefined = {n: v for n, v in before.items() if n in after and after[n] != v and v[0] == "trigger"}
    added = {t: cols - columns_before[t] for t, cols in _columns(scratch, tables).items()}
    scratch.close()
    kinds = [("trigger", False), ("index", False), ("table", True), ("table", False), ("view", False)]
    for kind, virtual in kinds:  # virtual tables first: dropping one drops its shadow tables
        for name, (k, sql) in created.items():
            if k == kind and sql.upper().startswith("CREATE VIRTUAL") == virtual:
                conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    for name, (_kind, sql) in redefined.items():  # triggers a later migration redefined: as they were
        conn.execute(f'DROP TRIGGER IF EXISTS "{name}"')
        conn.execute(sql)
    for table, cols in added.items():
        for col in sorted(cols):
            conn.execute(f'ALTER TABLE "{table}" DROP COLUMN "{col}"')
    conn.execute(f"PRAGMA user_version={version}")


def test_results_queued_before_the_migration_are_copied(store_copy: Path) -> None:
    tracks = describe_tracks(store_copy)
    record_plays(store_copy, [t.id for t in tracks])
    # Take the catalog back to the version before the airplay log, keeping the queued events.
    c = Catalog(store_copy)
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if "CREATE TABLE plays" in m))
    roll_back_to(c.conn, version)
    queued = c.conn.execute("SELECT COUNT(*) FROM stream_events WHERE kind='result'").fetchone()[0]
    c.close()
    assert queued == len(PLAYS)
    database = LocalDatabase(store_copy)  # opening it applies the migration again
    try:
        rows = database.read(lambda c: c.conn.execute("SELECT track_id, play_length FROM plays ORDER BY id").fetchall())
        report = ReportService(database, "+03:00").report(ReportRange.parse("2026-11-01", "2026-11-04"))
    finally:
        database.close()
    ids = [t.id for t in tracks]
    assert [(r[0], r[1]) for r in rows] == [(ids[i], length) for _, i, _, length in PLAYS]
    assert report.plays == EXPECTED_PLAYS
