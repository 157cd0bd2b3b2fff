"""``UsageCounter`` on a PostgreSQL catalog: every admission is the atomic UPSERT itself, on the
caller's connection, with nothing pending in memory and nothing handed to the writer; many
connections admitting at once stop exactly at the limit (the in-process test of what
test_quota_nodes.py checks across two servers)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from soundmark.auth.tokens import TokenStore, utc_day
from soundmark.auth.usage import UsageCounter
from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import Catalog
from soundmark.store import use_catalog_url

LIMIT = 7
CONNECTIONS = 6
ATTEMPTS = 30


def _no_writer(fn: Callable[[Connection], None], guard: threading.Lock) -> None:
    raise AssertionError("a PostgreSQL admission must not go through the writer")


@pytest.fixture()
def root(tmp_path: Path, pg_catalog_url: str) -> Iterator[Path]:
    use_catalog_url(tmp_path, pg_catalog_url, create=True)
    Catalog(tmp_path).close()  # migrates the schema
    yield tmp_path


def _admit_concurrently(root: Path, admit: Callable[[Catalog], bool]) -> list[bool]:
    readers = [Catalog(root, readonly=True) for _ in range(CONNECTIONS)]
    start = threading.Barrier(CONNECTIONS)

    def worker(catalog: Catalog) -> list[bool]:
        start.wait()
        return [admit(catalog) for _ in range(ATTEMPTS // CONNECTIONS)]

    try:
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            return [ok for part in pool.map(worker, readers) for ok in part]
    finally:
        for c in readers:
            c.close()


def test_a_monthly_limit_is_exact_across_connections(root: Path) -> None:
    catalog = Catalog(root)
    try:
        token, info = TokenStore(catalog).create("shared", limit_per_month=LIMIT)
    finally:
        catalog.close()
    usage = UsageCounter(_no_writer)

    admitted = _admit_concurrently(root, lambda c: usage.consume(c, info))

    assert admitted.count(True) == LIMIT and len(admitted) == ATTEMPTS
    assert usage.pending() == 0
    reader = Catalog(root, readonly=True)
    try:
        seen = usage.authenticate(reader, token)
        assert seen is not None and seen.used_this_month == LIMIT and seen.remaining_this_month == 0
        assert not usage.consume(reader, info)
    finally:
        reader.close()


def test_an_anonymous_daily_limit_is_exact_across_connections(root: Path) -> None:
    usage = UsageCounter(_no_writer)

    admitted = _admit_concurrently(root, lambda c: usage.consume_anonymous(c, "203.0.113.9", LIMIT))

    assert admitted.count(True) == LIMIT
    catalog = Catalog(root)
    try:
        assert TokenStore(catalog).anonymous_used("203.0.113.9", utc_day()) == LIMIT
        assert TokenStore(catalog).anonymous_used("203.0.113.10", utc_day()) == 0
    finally:
        catalog.close()


def test_counters_of_past_days_are_forgotten_on_a_new_day(root: Path) -> None:
    usage = UsageCounter(_no_writer)
    day = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    reader = Catalog(root, readonly=True)
    try:
        assert usage.consume_anonymous(reader, "203.0.113.9", LIMIT, now=day)
        assert usage.consume_anonymous(reader, "203.0.113.9", LIMIT, now=day + timedelta(days=3))
        rows = reader.conn.execute("SELECT client, day FROM anonymous_usage").fetchall()
    finally:
        reader.close()
    assert [tuple(r) for r in rows] == [("203.0.113.9", utc_day(day + timedelta(days=3)))]


def test_a_revoked_token_is_refused_at_once(root: Path) -> None:
    catalog = Catalog(root)
    try:
        tokens = TokenStore(catalog)
        _, info = tokens.create("gone", limit_per_month=None)
        usage = UsageCounter(_no_writer)
        assert usage.consume(catalog, info)
        assert tokens.revoke(info.id)
        assert not usage.consume(catalog, info)
        assert tokens.get(info.id) is not None and tokens.get(info.id).used_this_month == 1  # type: ignore[union-attr]
    finally:
        catalog.close()


def test_admission_refuses_to_run_inside_a_transaction(root: Path) -> None:
    reader = Catalog(root, readonly=True)
    try:
        reader.conn.execute("BEGIN")
        with pytest.raises(RuntimeError, match="own statement"):
            UsageCounter(_no_writer).consume_anonymous(reader, "203.0.113.9", LIMIT)
        reader.conn.execute("ROLLBACK")
    finally:
        reader.close()
