"""Migration 9 copies the song results already in the event queue into the airplay log."""

from __future__ import annotations

from pathlib import Path

from airplay import EXPECTED_PLAYS, PLAYS, describe_tracks, record_plays

from soundmark.catalog.sqlite import MIGRATIONS, Catalog
from soundmark.catalog.writer import LocalDatabase
from soundmark.services.reports import ReportRange, ReportService


def test_results_queued_before_the_migration_are_copied(store_copy: Path) -> None:
    tracks = describe_tracks(store_copy)
    record_plays(store_copy, [t.id for t in tracks])
    # Take the catalog back to the version before the airplay log, keeping the queued events.
    c = Catalog(store_copy)
    version = MIGRATIONS.index(next(m for m in MIGRATIONS if "CREATE TABLE plays" in m))
    c.conn.executescript(f"DROP TRIGGER stream_events_plays; DROP TABLE plays; PRAGMA user_version={version};")
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
