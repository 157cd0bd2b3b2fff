"""The single writer (catalog/writer.py) and the quota counter that writes through it (auth/usage.py):
writes in order in one thread, a lock held by another connection waited for off the event loop,
reads answered meanwhile, quotas exact while their counts wait to be written."""

from __future__ import annotations

import asyncio
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from soundmark.auth.tokens import TokenStore, month_period, utc_day
from soundmark.auth.usage import UsageCounter
from soundmark.catalog.sqlite import CATALOG_FILE, Catalog
from soundmark.catalog.writer import (
    DbWriter,
    LocalDatabase,
    ReadPool,
    ServerDatabase,
    flock_free,
    read_async,
    refuse_on_loop,
    write_async,
)
from soundmark.jobs import JobStore
from soundmark.streams.registry import DELIVERED, StreamStore, longpoll_category


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    Catalog(tmp_path).close()  # the schema
    return tmp_path


@pytest.fixture()
def db(root: Path) -> Iterator[ServerDatabase[Catalog]]:
    writer = DbWriter(lambda: Catalog(root), lambda c: c.conn, Catalog.close)
    database = ServerDatabase(writer, ReadPool(root, threads=2))
    yield database
    database.close()


def _other_connection(root: Path) -> sqlite3.Connection:
    """A connection of 'another process' (its own, short busy timeout, autocommit)."""
    conn = sqlite3.connect(root / CATALOG_FILE, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=100")
    return conn


def _usage(db: ServerDatabase[Catalog]) -> UsageCounter:
    return UsageCounter(lambda fn, guard: db.writer.submit(fn, guard=guard) and None)


def test_writes_run_in_order_in_one_thread(db: ServerDatabase[Catalog]) -> None:
    threads: set[str] = set()

    def put(i: int):  # type: ignore[no-untyped-def]
        def fn(conn: sqlite3.Connection) -> int:
            threads.add(threading.current_thread().name)
            conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (f"k{i:03d}", str(i)))
            return i

        return fn

    futures = [db.writer.submit(put(i)) for i in range(50)]
    assert [f.result() for f in futures] == list(range(50))
    assert threads == {"soundmark-db-writer"}
    rows = db.read(lambda c: c.conn.execute("SELECT value FROM meta WHERE key LIKE 'k%' ORDER BY rowid").fetchall())
    assert [int(r[0]) for r in rows] == list(range(50))


def test_a_failed_write_rolls_back_and_raises(db: ServerDatabase[Catalog]) -> None:
    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta(key, value) VALUES ('half', '1')")
        raise ValueError("stop")

    with pytest.raises(ValueError, match="stop"):
        db.write(half)
    assert db.read(lambda c: c.get_meta("half")) is None
    db.write(lambda conn: conn.execute("INSERT INTO meta(key, value) VALUES ('after', '1')"))  # still writing
    assert db.read(lambda c: c.get_meta("after")) == "1"


def test_blocking_calls_are_refused_on_the_event_loop(db: ServerDatabase[Catalog]) -> None:
    async def on_loop() -> None:
        with pytest.raises(RuntimeError, match="event loop"):
            db.write(lambda conn: None)
        with pytest.raises(RuntimeError, match="event loop"):
            db.read(lambda c: None)
        assert await db.awrite(lambda conn: 7) == 7  # the async way works
        assert await db.aread(lambda c: 8) == 8

    asyncio.run(on_loop())


def test_a_locked_catalog_is_waited_for_off_the_loop_while_reads_answer(
    root: Path, db: ServerDatabase[Catalog]
) -> None:
    """Another connection holds the write lock (as `soundmark add` does while it commits): the
    write waits in the writer thread; the event loop keeps running and reads keep answering."""
    other = _other_connection(root)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO meta(key, value) VALUES ('other', '1')")

    async def scenario() -> tuple[bool, int, str | None, bool]:
        write = asyncio.ensure_future(
            db.awrite(lambda conn: conn.execute("INSERT INTO meta(key, value) VALUES ('mine', '1')").rowcount)
        )
        ticks = 0
        for _ in range(20):  # the loop is free: these sleeps run while the write waits
            await asyncio.sleep(0.01)
            ticks += 1
        seen = await db.aread(lambda c: c.get_meta("other"))  # a read does not wait (uncommitted: None)
        waiting = not write.done()
        other.execute("COMMIT")
        assert await write == 1
        return waiting, ticks, seen, True

    waiting, ticks, seen, _ = asyncio.run(scenario())
    other.close()
    assert waiting and ticks == 20 and seen is None
    assert db.read(lambda c: (c.get_meta("other"), c.get_meta("mine"))) == ("1", "1")


def test_local_database_writes_and_reads(root: Path) -> None:
    local = LocalDatabase(root)
    local.write(lambda conn: conn.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')"))
    assert local.read(lambda c: c.get_meta("x")) == "y"
    local.close()


# --- quotas counted through the writer ----------------------------------------------------------
def test_token_limit_is_exact_while_counts_wait_for_the_lock(root: Path, db: ServerDatabase[Catalog]) -> None:
    with closing(Catalog(root)) as catalog:
        token, info = TokenStore(catalog).create("limited", limit_per_month=5)
    usage = _usage(db)
    other = _other_connection(root)
    other.execute("BEGIN IMMEDIATE")  # the counts cannot be written yet

    def admit(_: int) -> bool:
        return db.read(lambda c: usage.consume(c, info))

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(admit, range(40)))
    assert sum(admitted) == 5 and usage.pending() == 5  # admitted in memory, nothing written yet
    seen = db.read(lambda c: usage.authenticate(c, token))
    assert seen is not None and seen.used_this_month == 5  # 0 stored + 5 pending
    assert _stored(root, info.id) == 0
    other.execute("COMMIT")
    other.close()
    db.write(lambda conn: None)  # a barrier: the writer has run the flush queued before it
    assert usage.pending() == 0
    assert _stored(root, info.id) == 5
    assert not db.read(lambda c: usage.consume(c, info))  # still refused once written


def _stored(root: Path, token_id: int) -> int:
    with closing(Catalog(root, readonly=True)) as catalog:
        quota = TokenStore(catalog).quota(token_id)
    assert quota is not None
    return quota[2]


def test_token_limit_is_exact_while_flushes_commit_concurrently(root: Path, db: ServerDatabase[Catalog]) -> None:
    """Admissions racing with the writer's COMMITs: every request is counted once (stored or
    pending), never twice and never missed, so exactly the limit is admitted."""
    with closing(Catalog(root)) as catalog:
        token, info = TokenStore(catalog).create("busy", limit_per_month=300)
    usage = _usage(db)

    def admit(_: int) -> bool:
        return db.read(lambda c: usage.consume(c, info))

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(admit, range(1000)))
    db.write(lambda conn: None)
    assert sum(admitted) == 300
    assert _stored(root, info.id) == 300
    shown = db.read(lambda c: usage.authenticate(c, token))
    assert shown is not None and shown.used_this_month == 300 and shown.remaining_this_month == 0


def test_revoked_token_is_refused(root: Path, db: ServerDatabase[Catalog]) -> None:
    with closing(Catalog(root)) as catalog:
        tokens = TokenStore(catalog)
        token, info = tokens.create("gone")
        tokens.revoke(info.id)
    usage = _usage(db)
    assert db.read(lambda c: usage.authenticate(c, token)) is None
    assert not db.read(lambda c: usage.consume(c, info))


def test_anonymous_quota_per_client_and_day(root: Path, db: ServerDatabase[Catalog]) -> None:
    usage = _usage(db)
    got = [db.read(lambda c: usage.consume_anonymous(c, "10.0.0.1", 3)) for _ in range(5)]
    other = [db.read(lambda c: usage.consume_anonymous(c, "10.0.0.2", 3)) for _ in range(2)]
    db.write(lambda conn: None)
    assert got == [True, True, True, False, False] and other == [True, True]
    with closing(Catalog(root, readonly=True)) as catalog:
        assert TokenStore(catalog).anonymous_used("10.0.0.1", utc_day()) == 3
        assert TokenStore(catalog).anonymous_used("10.0.0.2", utc_day()) == 2


def test_counters_of_past_days_are_forgotten_on_a_new_day(root: Path, db: ServerDatabase[Catalog]) -> None:
    usage = _usage(db)
    day = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
    for client in ("10.0.0.1", "10.0.0.2"):
        assert db.read(lambda c, client=client: usage.consume_anonymous(c, client, 3, now=day))
    db.write(lambda conn: None)
    later = day + timedelta(days=3)
    assert db.read(lambda c: usage.consume_anonymous(c, "10.0.0.3", 3, now=later))
    db.write(lambda conn: None)
    with closing(Catalog(root, readonly=True)) as catalog:
        rows = catalog.conn.execute("SELECT client, day FROM anonymous_usage").fetchall()
    assert [tuple(r) for r in rows] == [("10.0.0.3", utc_day(later))]


def test_counts_of_another_process_keep_the_stored_count_within_the_limit(
    root: Path, db: ServerDatabase[Catalog]
) -> None:
    """Another process used the quota between this one's admission and its write: the stored
    count still never passes the limit (the conditional UPSERT stores what fits)."""
    with closing(Catalog(root)) as catalog:
        _, info = TokenStore(catalog).create("shared", limit_per_month=4)
    usage = _usage(db)
    other = _other_connection(root)
    other.execute("BEGIN IMMEDIATE")
    admitted = [db.read(lambda c: usage.consume(c, info)) for _ in range(3)]
    assert TokenStore(other).consume_id(info.id, month_period(), 3)  # the other process, meanwhile
    other.execute("COMMIT")
    other.close()
    db.write(lambda conn: None)
    assert admitted == [True, True, True]
    assert _stored(root, info.id) == 4 and usage.pending() == 0


# --- stores over the server's database ----------------------------------------------------------
def test_stream_store_through_the_writer(root: Path, db: ServerDatabase[Catalog]) -> None:
    with closing(Catalog(root)) as catalog:
        _, info = TokenStore(catalog).create("radio")
    streams = StreamStore(root, db)
    streams.add_stream(info.id, "x" * 32, 1, "http://127.0.0.1:9/radio", None)
    streams.set_callback_url(info.id, "x" * 32, "http://127.0.0.1:9/hook")
    cat = longpoll_category("x" * 32, 1)
    stamps = [streams.add_event(info.id, 1, cat, "result", {"n": i}) for i in range(5)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 5
    event, stamp = streams.poll(cat, stamps[1])
    assert event is not None and event.payload == {"n": 2} and stamp == stamps[2]
    none, fresh = streams.poll(cat, stamps[-1])
    assert none is None and fresh > stamps[-1]
    assert [r.radio_id for r in streams.streams(info.id)] == [1] and streams.pending_count() == 5
    streams.close()


def test_job_store_caps_active_jobs_in_one_transaction(root: Path, db: ServerDatabase[Catalog]) -> None:
    jobs = JobStore(root, db)

    def open_one(_: int) -> bool:
        return jobs.create_bounded("enterprise", None, {}, None, max_active=3) is not None

    with ThreadPoolExecutor(6) as pool:
        created = list(pool.map(open_one, range(12)))
    assert sum(created) == 3 and jobs.count_active() == 3
    jobs.close()


def test_flock_free(tmp_path: Path) -> None:
    lock = tmp_path / "write.lock"
    assert flock_free(lock)
    with open(lock, "a+") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        assert not flock_free(lock)
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    assert flock_free(lock)


def test_a_connection_refusing_the_loop_answers_threads_only(root: Path) -> None:
    catalog = Catalog(root)
    refuse_on_loop(catalog.conn)

    async def on_loop() -> None:
        with pytest.raises(sqlite3.OperationalError):
            catalog.totals()
        assert await asyncio.to_thread(catalog.totals) == (0, 0.0)  # from a thread it answers

    asyncio.run(on_loop())
    assert catalog.totals() == (0, 0.0)  # and outside any loop
    catalog.close()


@pytest.mark.parametrize("server", [True, False])
def test_write_and_read_async_reach_either_database(root: Path, server: bool) -> None:
    database: ServerDatabase[Catalog] | LocalDatabase
    if server:
        database = ServerDatabase(DbWriter(lambda: Catalog(root), lambda c: c.conn, Catalog.close), ReadPool(root))
    else:
        database = LocalDatabase(root)

    async def run() -> tuple[int, str | None]:
        changed = await write_async(
            database, lambda c: c.execute("INSERT INTO meta(key, value) VALUES ('k', 'v')").rowcount
        )
        return changed, await read_async(database, lambda catalog: catalog.get_meta("k"))

    try:
        assert asyncio.run(run()) == (1, "v")
    finally:
        database.close()


def test_a_read_pool_needs_a_thread(root: Path) -> None:
    with pytest.raises(ValueError):
        ReadPool(root, threads=0)


def test_stream_writes_awaited_hold_no_default_thread_while_the_lock_is_held(
    root: Path, db: ServerDatabase[Catalog]
) -> None:
    """With one thread in the loop's default pool and another process holding the write lock,
    the awaited stream writes wait in the writer while that thread stays free for other work
    (the blocking writes through ``asyncio.to_thread`` would each hold it until the lock goes)."""
    with closing(Catalog(root)) as catalog:
        _, info = TokenStore(catalog).create("radio")
    streams = StreamStore(root, db)
    streams.add_stream(info.id, "x" * 32, 1, "http://127.0.0.1:9/radio", None)
    stream_id = streams.streams(info.id)[0].id
    cat = longpoll_category("x" * 32, 1)
    other = _other_connection(root)

    async def run() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        other.execute("BEGIN IMMEDIATE")  # `soundmark add`, say
        writes = [asyncio.ensure_future(streams.aadd_event(info.id, 1, cat, "result", {"n": i})) for i in range(3)] + [
            asyncio.ensure_future(streams.aset_status(stream_id, True, 0, None))
        ]
        probe = asyncio.ensure_future(asyncio.to_thread(lambda: "free"))
        done, _ = await asyncio.wait([probe, *writes], return_when=asyncio.FIRST_COMPLETED)
        assert done == {probe} and probe.result() == "free" and not any(w.done() for w in writes)
        other.execute("COMMIT")
        stamps = await asyncio.gather(*writes[:3])
        await writes[3]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3

    try:
        asyncio.run(run())
    finally:
        other.close()
    assert streams.streams(info.id)[0].running
    assert [streams.poll(cat, 0)[0] is not None] == [True]
    expired, deleted = asyncio.run(streams.aprune(1, 3600))
    assert (expired, deleted) == (0, 2)
    streams.close()


def test_awaited_delivery_writes_match_the_blocking_ones(root: Path, db: ServerDatabase[Catalog]) -> None:
    """``amark`` and ``aretry_later`` through the writer do what ``mark`` and ``retry_later`` do:
    a failed delivery holds back the account's later events until its retry time."""
    with closing(Catalog(root)) as catalog:
        _, info = TokenStore(catalog).create("radio")
    streams = StreamStore(root, db)
    streams.set_callback_url(info.id, "x" * 32, "http://127.0.0.1:9/hook")
    cat = longpoll_category("x" * 32, 1)

    async def run() -> None:
        for i in range(3):
            await streams.aadd_event(info.id, 1, cat, "result", {"n": i})
        first, second, third = await asyncio.to_thread(streams.due_events, 1e12)
        await streams.amark(first.id, DELIVERED)
        await streams.aretry_later(second.id, info.id, 1e11, "receiver down")
        due_now = await asyncio.to_thread(streams.due_events, 1e10)
        assert due_now == []  # the second waits for its retry, the third behind it
        due_later = await asyncio.to_thread(streams.due_events, 1e11)
        assert [e.id for e in due_later] == [second.id, third.id] and due_later[0].attempts == 1

    asyncio.run(run())
    assert streams.pending_count() == 2
    streams.close()
