"""Live streams over several nodes on one PostgreSQL catalog, in this process (each "node" its own
store directory and connection): stream leases (one holder; taken over once a lease runs out or is
released), callback claims (two delivering nodes, each event POSTed once, in order per account),
event stamps in commit order whatever the writers' clocks, and the LISTEN watcher woken by an
event written by another process; a StreamManager runs only the streams it holds, stops one it
lost, and stops them all once it cannot renew; a monitor taking a stream over does not announce
again the song another node announced (read back from the stored result event); the stream and
Stations use cases (services/streams.py) on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path

import pytest
from radio import CallbackReceiver, Item, Schedule, VirtualRadio

from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import LocalDatabase
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.windows import WindowPeaks
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.services.streams import StationsService, StreamAccount, StreamService
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params, use_catalog_url
from soundmark.streams.callbacks import CallbackDeliverer, result_payload
from soundmark.streams.event_watch import EventWatcher
from soundmark.streams.health import StreamHealth
from soundmark.streams.leases import LEASE_SECONDS, Node, StreamLeases
from soundmark.streams.monitor import MonitorConfig, StreamJob, StreamManager
from soundmark.streams.registry import DELIVERED, StreamStore, longpoll_category
from soundmark.streams.tracker import Play
from support import Piece

MD5 = "a" * 32


@pytest.fixture()
def roots(pg_catalog_url: str, tmp_path: Path) -> list[Path]:
    """Two node directories over one new PostgreSQL catalog (no index needed here)."""
    a, b = tmp_path / "node-a", tmp_path / "node-b"
    Store(a, FingerprintParams(), create=True, index_backend="memory", catalog_url=pg_catalog_url).close()
    use_catalog_url(b, pg_catalog_url, create=False)
    return [a, b]


def _token(root: Path, name: str = "radio") -> int:
    with closing(Catalog(root)) as catalog:
        _, info = TokenStore(catalog).create(name)
    return info.id


@pytest.fixture()
def dbs(roots: list[Path]) -> Iterator[list[LocalDatabase]]:
    opened = [LocalDatabase(r) for r in roots]
    yield opened
    for db in opened:
        db.close()


def _leases(db: LocalDatabase, name: str, lease: float = LEASE_SECONDS) -> StreamLeases:
    return StreamLeases(db, Node.this_process("monitor", name), lease=lease)


def test_one_node_holds_a_stream_until_its_lease_runs_out_or_is_released(
    roots: list[Path], dbs: list[LocalDatabase]
) -> None:
    token_id = _token(roots[0])
    streams = StreamStore(roots[0], dbs[0])
    streams.add_stream(token_id, MD5, 1, "http://127.0.0.1:9/a", None)
    [sid] = [r.id for r in streams.streams()]
    a, b = _leases(dbs[0], "node-a"), _leases(dbs[1], "node-b")
    t = time.time()

    assert asyncio.run(a.claim(t)) == ({sid}, t + LEASE_SECONDS)
    assert asyncio.run(b.claim(t + 1))[0] == set()
    assert asyncio.run(a.claim(t + 5))[0] == {sid}  # renewed until t + 25
    assert asyncio.run(b.claim(t + 24))[0] == set()
    assert asyncio.run(b.claim(t + 26))[0] == {sid}  # a's lease ran out: b takes the stream
    assert asyncio.run(a.claim(t + 27))[0] == set()  # and a no longer holds it
    seen = dbs[0].read(lambda c: {str(r[0]) for r in c.conn.execute("SELECT id FROM nodes").fetchall()})
    assert seen == {"node-a", "node-b"}

    asyncio.run(b.release())  # a clean shutdown: the stream is free at once, the node gone
    assert asyncio.run(a.claim(t + 28))[0] == {sid}
    assert dbs[0].read(lambda c: c.conn.execute("SELECT COUNT(*) FROM nodes WHERE id='node-b'").fetchone()[0]) == 0
    # A revoked token's stream is nobody's.
    with closing(Catalog(roots[0])) as catalog:
        catalog.conn.execute("UPDATE tokens SET revoked_at=? WHERE id=?", (time.time(), token_id))
    assert asyncio.run(a.claim(t + 29))[0] == set()
    streams.close()


def test_nodes_claiming_at_once_never_hold_the_same_stream(roots: list[Path], dbs: list[LocalDatabase]) -> None:
    token_id = _token(roots[0])
    streams = StreamStore(roots[0], dbs[0])
    for radio_id in range(6):
        streams.add_stream(token_id, MD5, radio_id, f"http://127.0.0.1:9/{radio_id}", None)
    extra = [LocalDatabase(roots[1]) for _ in range(2)]
    nodes = [_leases(db, f"node-{i}", lease=2.0) for i, db in enumerate([*dbs, *extra])]
    holders: set[str] = set()
    t = time.time()
    try:
        for k in range(15):  # every round at a time when all the leases of the last have run out
            now = t + 3 * k
            with ThreadPoolExecutor(len(nodes)) as pool:
                held = list(pool.map(lambda n: asyncio.run(n.claim(now))[0], nodes))  # noqa: B023
            claimed = [sid for h in held for sid in h]
            assert len(claimed) == len(set(claimed)) == 6, held  # each stream held, by one node
            holders |= {n.node.id for n, h in zip(nodes, held, strict=True) if h}
    finally:
        for db in extra:
            db.close()
    assert len(holders) >= 1
    streams.close()


def test_two_delivering_nodes_post_each_event_once_in_order(roots: list[Path], dbs: list[LocalDatabase]) -> None:
    receiver = CallbackReceiver()
    receiver.up()
    tokens = [_token(roots[0], "one"), _token(roots[0], "two")]
    stores = [StreamStore(r, db) for r, db in zip(roots, dbs, strict=True)]
    for token_id in tokens:
        stores[0].add_stream(token_id, MD5, 1, "http://127.0.0.1:9/a", None)
        stores[0].set_callback_url(token_id, MD5, receiver.url)
    cat = longpoll_category(MD5, 1)
    n = 40
    for i in range(n):  # the two accounts' events interleaved, written by both nodes
        stores[i % 2].add_event(tokens[i % 2], 1, cat, "result", {"n": i, "account": tokens[i % 2]})
    # A claim held by a node that then died: its events are delivered once the claim runs out.
    dead = stores[0].claim_due("dead-node", time.time(), time.time() + 2, limit=3)
    assert [e.payload["n"] for e in dead] == [0, 1, 2]
    settings = Settings(allow_private_urls=True, callback_timeout=5)
    deliverers = [CallbackDeliverer(s, settings, f"node-{i}") for i, s in enumerate(stores)]

    async def deliver() -> None:
        tasks = [asyncio.create_task(d.run()) for d in deliverers]
        deadline = time.monotonic() + 60
        while len(receiver.snapshot()) < n and time.monotonic() < deadline:
            for d in deliverers:
                d.poke()
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # were anything posted twice, it would arrive by now
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(deliver())
        bodies = receiver.snapshot()
        numbers = [int(b["n"]) for b in bodies]  # type: ignore[call-overload]
        assert sorted(numbers) == list(range(n)), numbers  # every event, none twice
        for token_id in tokens:  # each account's events in the order they were written
            mine = [int(b["n"]) for b in bodies if b["account"] == token_id]  # type: ignore[call-overload]
            assert mine == sorted(mine)
        assert sum(d.delivered for d in deliverers) == n  # and counted once, by the node that POSTed it
        states = dbs[0].read(lambda c: c.conn.execute("SELECT DISTINCT state FROM stream_events").fetchall())
        assert [s[0] for s in states] == [DELIVERED]
    finally:
        receiver.down()
        for s in stores:
            s.close()


def test_event_stamps_follow_commit_order_whatever_the_clocks(roots: list[Path], dbs: list[LocalDatabase]) -> None:
    token_id = _token(roots[0])
    a, b = StreamStore(roots[0], dbs[0]), StreamStore(roots[1], dbs[1])
    cat = longpoll_category(MD5, 1)
    first = a.add_event(token_id, 1, cat, "result", {"n": 0})
    far = first + 10**9  # a client's since_time from the future moves no stamp
    assert a.poll(cat, far) == (None, far)
    first = a.add_event(token_id, 1, cat, "result", {"n": 1})
    assert first < far
    dbs[0].write(lambda c: c.execute("DELETE FROM stream_events WHERE created_ms<?", (first,)))
    ahead = first + 3_600_000  # a node whose clock runs an hour ahead wrote this one
    dbs[0].write(lambda c: c.execute("UPDATE stream_events SET created_ms=?", (ahead,)))
    none, fresh = b.poll(cat, ahead)
    assert none is None and fresh > ahead
    second = b.add_event(token_id, 1, cat, "result", {"n": 2})
    assert second > fresh  # after every stamp a poll answered, on any node
    event, stamp = a.poll(cat, fresh)
    assert event is not None and event.payload == {"n": 2} and stamp == second
    a.close()
    b.close()


WRITE_EVENT = """
import sys
from pathlib import Path
from soundmark.streams.registry import StreamStore
store = StreamStore(Path(sys.argv[1]))
store.add_event(int(sys.argv[2]), 1, sys.argv[3], "notification", {"status": "-"})
store.close()
"""


def test_the_listener_wakes_for_an_event_another_process_writes(roots: list[Path]) -> None:
    token_id = _token(roots[0])
    woken: list[str | None] = []

    async def watch() -> None:
        watcher = EventWatcher(roots[0], woken.append)
        assert watcher.shared
        task = asyncio.create_task(watcher.run(0.5))
        await asyncio.wait_for(watcher.listening.wait(), 30)
        await asyncio.sleep(0.2)
        woken.clear()  # the wake-up of connecting
        cmd = [sys.executable, "-c", WRITE_EVENT, str(roots[1]), str(token_id), longpoll_category(MD5, 1)]
        await asyncio.to_thread(subprocess.run, cmd, check=True, timeout=60)
        deadline = time.monotonic() + 30
        while not woken and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(watch())
    assert woken, "the LISTEN connection was not notified of the other process's event"
    assert longpoll_category(MD5, 1) in woken  # the NOTIFY names the category: only its requests look


class _Sink:
    async def song(self, job: StreamJob, play: Play, final: bool) -> None:
        pass

    async def notify(self, job: StreamJob, code: int, message: str, running: bool) -> None:
        pass

    async def status(self, job: StreamJob, running: bool) -> None:
        pass


def _manager(store: StreamStore, db: LocalDatabase, name: str, lease: float) -> StreamManager:
    async def recognize(window: object) -> list[WorkerMatch]:
        return []

    async def duration(track_id: int) -> float | None:
        return None

    config = MonitorConfig.from_settings(Settings(), FingerprintParams())
    return StreamManager(store, config, recognize, duration, _Sink(), leases=_leases(db, name, lease))


def test_a_manager_runs_only_the_streams_it_holds_and_stops_those_it_lost(
    roots: list[Path], dbs: list[LocalDatabase]
) -> None:
    token_id = _token(roots[0])
    stores = [StreamStore(r, db) for r, db in zip(roots, dbs, strict=True)]
    stores[0].add_stream(token_id, MD5, 1, "http://127.0.0.1:9/unreachable", None)

    async def scenario() -> None:
        a, b = (_manager(s, db, f"node-{n}", 1.0) for s, db, n in zip(stores, dbs, "ab", strict=True))
        await a.sync()
        await b.sync()
        assert (len(a.workers), len(b.workers)) == (1, 0)
        await asyncio.sleep(1.2)  # a stops renewing (as if it hung): its lease runs out
        await b.sync()
        assert len(b.workers) == 1
        await a.sync()  # a learns it lost the stream: its worker stops
        assert len(a.workers) == 0
        # b cannot renew (the run loop's sync fails): fence stops its workers once its lease ran out.
        await asyncio.sleep(max(0.0, b.held_until - time.time()) + 0.05)
        await b.fence()
        assert len(b.workers) == 0
        await a.sync()  # b's lease ran out too: a takes the stream again
        assert len(a.workers) == 1
        await a.close()  # a clean shutdown hands the lease back at once
        await b.sync()
        assert len(b.workers) == 1
        await b.close()

    try:
        asyncio.run(scenario())
    finally:
        for s in stores:
            s.close()


class _Songs(_Sink):
    def __init__(self) -> None:
        self.songs: list[tuple[int, int]] = []  # (radio_id, track_id)

    async def song(self, job: StreamJob, play: Play, final: bool) -> None:
        self.songs.append((job.radio_id, play.best.track_id))


def test_a_monitor_taking_a_stream_over_does_not_report_the_play_on_air_again(
    roots: list[Path], dbs: list[LocalDatabase], built_store: Path, pieces: list[Piece]
) -> None:
    piece = pieces[2]
    radio = VirtualRadio(Schedule([Item(piece.title, piece.samples)]), burst_packets=0)
    store = Store(built_store, recorded_params(built_store))
    recognizer = Recognizer(store, MatchSettings())
    track = next(t for t in store.catalog.list_tracks() if t.meta.title == piece.title)
    settings = Settings(allow_private_urls=True)
    token_id = _token(roots[0])
    streams = StreamStore(roots[0], dbs[0])
    for radio_id in (1, 2):  # the same radio twice: one stream was reported on by another node
        streams.add_stream(token_id, MD5, radio_id, f"{radio.url}/0.mp3", "before")
    heard = radio.t0 + 2.0  # the other node first heard the song 2 s into it, and announced it
    song = {"title": piece.title, "song_link": f"http://x/song/{track.id}", "score": 90}
    payload = result_payload(1, Play(track.id, heard, heard, track.duration, WorkerMatch(track.id, 2, 30, 1, 1)),
                             [song], settings.callback_timezone, with_length=False)  # fmt: skip
    streams.add_event(token_id, 1, longpoll_category(MD5, 1), "result", payload)
    assert asyncio.run(streams.alast_result(longpoll_category(MD5, 1))) == (track.id, payload["result"]["timestamp"])  # type: ignore[index]

    async def recognize(window: WindowPeaks) -> list[WorkerMatch]:
        found = await asyncio.to_thread(recognizer.recognize_print, window.query_print(store.params))
        return [WorkerMatch(m.track.id, m.offset_seconds, m.score, m.time_rate, m.freq_rate) for m in found]

    async def duration(track_id: int) -> float | None:
        found = await asyncio.to_thread(store.catalog.get_track, track_id)
        return None if found is None else found.duration

    sink = _Songs()
    config = MonitorConfig.from_settings(settings, store.params)
    manager = StreamManager(streams, config, recognize, duration, sink, leases=_leases(dbs[0], "node-new"))

    async def main() -> None:
        await manager.sync()
        assert len(manager.workers) == 2
        deadline = time.monotonic() + 45
        while (2, track.id) not in sink.songs and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(8.0)  # two more windows of the song on stream 1
        await manager.close()

    try:
        asyncio.run(main())
    finally:
        radio.close()
        store.close()
        streams.close()
    assert (2, track.id) in sink.songs  # the stream nobody reported on: the song is announced
    assert (1, track.id) not in sink.songs, sink.songs  # already announced by the other node: not again


def _allow_all(url: str, policy: object) -> None:
    pass


def test_the_stream_and_stations_services_on_postgresql(roots: list[Path], dbs: list[LocalDatabase]) -> None:
    with closing(Catalog(roots[0])) as catalog:
        token, info = TokenStore(catalog).create("radio", scopes={"admin", "streams"})
    streams = StreamStore(roots[0], dbs[0])
    settings = Settings(allow_private_urls=True)
    service = StreamService(streams, settings, _allow_all)
    stations = StationsService(dbs[0], service, settings)

    async def run() -> None:
        assert not await stations.knows_account(info.id)
        account = await stations.account(info.id, token)  # the token itself, once
        assert account == StreamAccount.of(info.id, token)
        await stations.add(info.id, "5", "http://127.0.0.1:9/five.mp3", token=token, before=True)
        assert await stations.knows_account(info.id)
        await service.add_stream(account, 6, "http://127.0.0.1:9/six.mp3")
        await service.set_stream_url(account, 6, "http://127.0.0.1:9/six-b.mp3")
        await service.set_callback_url(account, "http://127.0.0.1:9/hook")
        assert await service.callback_url(account) == "http://127.0.0.1:9/hook"
        rows = await service.streams(account)
        assert [(r.radio_id, r.url, r.callbacks) for r in rows] == [
            (5, "http://127.0.0.1:9/five.mp3", "before"), (6, "http://127.0.0.1:9/six-b.mp3", None),
        ]  # fmt: skip
        health = StreamHealth(rows[0].id, dbs[0], urgent=0.0, routine=0.0)
        health.connected()
        await asyncio.sleep(0.3)
        await health.close()
        play = Play(7, time.time() - 30, time.time(), 200.0, WorkerMatch(7, 3.0, 30.0, 1.0, 1.0))
        song = {"title": "Song", "artist": "Band", "song_link": "http://x/song/7", "score": 88}
        payload = result_payload(5, play, [song], settings.callback_timezone, with_length=True)
        await streams.aadd_event(info.id, 5, rows[0].category, "result", payload)
        view = await stations.view()
        assert [(s.radio_id, s.owner) for s in view.stations] == [(5, "radio"), (6, "radio")]
        assert view.stations[0].health is not None and view.stations[0].state == "down"  # closed: stopped
        assert [(p.radio_id, p.title, p.artist, p.score, p.play_length) for p in view.plays] == [
            (5, "Song", "Band", 88, 30)
        ]
        assert view.plays[0].start is not None and abs(view.plays[0].start - play.start) < 1.5
        history = await streams.arecent_results(rows[0].category)
        assert history is not None and [e["title"] for e in history] == ["Song"]
        await stations.remove(info.id, "5")
        await service.delete_stream(account, 6)
        assert await service.streams(account) == []

    try:
        asyncio.run(run())
    finally:
        streams.close()
