"""Copy the accounts and the stream history of an embedded store into a PostgreSQL catalog.

What moves, keyed as in the source (ids kept: usage, streams, plays and events name tokens, streams
and events by id): tokens (their SHA-256 only, as stored: the secrets were never kept, and clients
keep using theirs), monthly token usage, anonymous usage, stream accounts, streams, stream health,
plays and stream events. Every kept event moves, delivered ones too, with its state: long-poll
clients read recent events whatever their delivery state, and a delivered event stays delivered.
What does not: web sessions (an admin logs in again on the new nodes), jobs and their audio (a job
belongs to the node that runs it: let running jobs finish on the old store), nodes (each process
registers itself), and the index bookkeeping (the target's index writes its own).

Node-local state is left at the target's defaults: a stream's ``owner``/``lease_until`` and an
event's ``owner`` name processes of the old store, so a monitor or callback sender of the cluster
takes them as unowned.

Each table is read in pages by rowid and upserted (``ON CONFLICT (key) DO UPDATE``) in one short
transaction per page, so a second run brings every row to the source's current values, and an
interrupted run simply runs again. Plays are copied before events: the target's trigger then finds
the play of every copied result event already present (``ON CONFLICT (event_id) DO NOTHING``), and
each identity sequence is moved past the copied ids before the next table, so no generated id (a
play the trigger adds, a token created on a node) meets a copied one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import Catalog

PAGE_ROWS = 2_000


@dataclass(frozen=True)
class Table:
    """One table to copy: its conflict key, the columns left at the target's defaults, and
    whether the target generates its ``id`` (an identity column)."""

    name: str
    key: tuple[str, ...]
    reset: tuple[str, ...] = ()
    identity: bool = False


TABLES: tuple[Table, ...] = (
    Table("tokens", ("id",), identity=True),
    Table("token_usage", ("token_id", "period")),
    Table("anonymous_usage", ("client", "day")),
    Table("stream_accounts", ("token_id",)),
    Table("streams", ("id",), reset=("owner", "lease_until"), identity=True),
    Table("stream_health", ("stream_id",)),
    Table("plays", ("id",), identity=True),
    Table("stream_events", ("id",), reset=("owner",), identity=True),
)
NOT_COPIED = ("web_sessions", "jobs", "job_audio", "nodes")


def _source_columns(conn: Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")]


def _target_columns(conn: Connection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    )
    return {str(r[0]) for r in rows}


def copy_table(source: Connection, target: Catalog, table: Table, page_rows: int = PAGE_ROWS) -> int:
    """Upsert every row of ``table`` from ``source`` into ``target``; returns how many rows were read."""
    present = _target_columns(target.conn, table.name)
    cols = [c for c in _source_columns(source, table.name) if c in present and c not in table.reset]
    others = [c for c in cols if c not in table.key]
    action = ", ".join(f"{c} = excluded.{c}" for c in others)
    sql = (
        f"INSERT INTO {table.name}({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        f" ON CONFLICT ({', '.join(table.key)}) " + (f"DO UPDATE SET {action}" if others else "DO NOTHING")
    )
    select = f"SELECT rowid, {', '.join(cols)} FROM {table.name} WHERE rowid > ? ORDER BY rowid LIMIT ?"
    last, copied = 0, 0
    while True:
        rows = source.execute(select, (last, page_rows)).fetchall()
        if not rows:
            break
        with target.transaction() as conn:
            conn.executemany(sql, [tuple(r)[1:] for r in rows])
        last = int(rows[-1][0])
        copied += len(rows)
    if table.identity:
        _advance_identity(source, target, table.name)
    return copied


def _advance_identity(source: Connection, target: Catalog, table: str) -> None:
    """Move ``table``'s identity sequence past every id copied (and every id the source's
    ``AUTOINCREMENT`` handed out) and every id the target holds."""
    src_top = int(source.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
    seq = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    if seq is not None:
        src_top = max(src_top, int(seq[0]))
    with target.transaction() as conn:
        top = max(src_top, int(conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]))
        if top > 0:
            conn.execute(
                "SELECT setval(s, GREATEST(?, COALESCE(pg_sequence_last_value(s), 0)))"
                f" FROM (SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS s) AS q",
                (top,),
            )


def copy_tables(
    source: Connection, target: Catalog, *, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, int]:
    """Copy every table of ``TABLES`` in order; ``progress(table, done, total)`` after each."""
    counts: dict[str, int] = {}
    for i, table in enumerate(TABLES):
        counts[table.name] = copy_table(source, target, table)
        if progress is not None:
            progress(table.name, i + 1, len(TABLES))
    return counts


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows of every copied table (both dialects)."""
    return {t.name: int(conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]) for t in TABLES}
