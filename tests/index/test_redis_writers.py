"""Several writers on one Redis index (as processes on several machines sharing one catalog):
leases keep each one's unpublished part from the others' cleanups, a dead or hung writer's part
is reclaimed once its lease lapses, and ``refresh()`` keeps the live set right change by change.

The catalog is SQLite here, one connection per writer on the same file. Two ``soundmark add``
processes on one store directory are not tested: the store's file lock (``Store.writer``)
serialises them on one machine; processes writing at once are tested one level down, through
the index's ports.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from contract import BIG_CAP, got, random_track
from redis import RedisCluster
from redis.cluster import ClusterNode

from soundmark.catalog.sqlite import Catalog
from soundmark.errors import StoreError
from soundmark.index.base import TrackPostings, Written
from soundmark.index.redis_cluster import RedisClusterIndex
from soundmark.index.redis_live import MIN_MERGE, LiveSlots
from soundmark.index.redis_url import parse_redis_url
from support import wait_for

SHORT_LEASE_MS = 2000  # far above a small write's longest gap between renewals, short to wait out


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A store directory whose catalog file exists (migrated) before any writer opens it."""
    db = tmp_path / "db"
    db.mkdir()
    Catalog(db).close()
    return db


@pytest.fixture()
def catalogs(root: Path) -> Iterator[list[Catalog]]:
    """Three connections to one catalog file: two writers and a reader."""
    opened = [Catalog(root) for _ in range(3)]
    yield opened
    for c in opened:
        c.close()


@pytest.fixture()
def cluster(redis_cluster: str) -> Iterator[RedisCluster]:
    location = parse_redis_url(redis_cluster)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])
    yield client
    client.close()


def _keys(client: RedisCluster, prefix: str) -> set[bytes]:
    """Every key under ``prefix`` (``prefix:...`` and the hash keys' ``{prefix:...``) on every master."""
    return {
        k
        for node in client.get_primaries()
        for pattern in (f"{prefix}:*", f"{{{prefix}:*")
        for k in client.get_redis_connection(node).scan_iter(match=pattern)
    }


def _lease_key(index: RedisClusterIndex, written: Written) -> bytes:
    return f"{index.namespace}:lease:{written.parts[0].name}".encode()


def _publish(index: RedisClusterIndex, catalog: Catalog, written: Written) -> None:
    """What ``StoreWriter.commit`` does with a write: publish it in a transaction, then refresh."""
    try:
        with catalog.transaction():
            index.publish(written)
    except BaseException:
        index.abort(written)
        raise
    index.refresh(force=True)


def _postings_of(index: RedisClusterIndex, tracks: dict[int, TrackPostings]) -> Counter[tuple[int, int, int]]:
    """Every live posting of the hashes of ``tracks``, as (hash, track id, time)."""
    q = np.unique(np.concatenate([t.hashes for t in tracks.values()])).astype(np.uint32)
    return got(index.lookup(q, BIG_CAP), q)


def _model(tracks: dict[int, TrackPostings]) -> Counter[tuple[int, int, int]]:
    return Counter(
        (h, tid, tm) for tid, t in tracks.items() for h, tm in zip(t.hashes.tolist(), t.times.tolist(), strict=True)
    )


def test_an_in_flight_write_survives_another_writers_cleanup(
    redis_url: str, redis_prefix: str, cluster: RedisCluster, catalogs: list[Catalog]
) -> None:
    rng = np.random.default_rng(40)
    a, b = RedisClusterIndex(redis_url, catalogs[0]), RedisClusterIndex(redis_url, catalogs[1])
    try:
        a.refresh(force=True)
        b.refresh(force=True)
        tracks = {t: random_track(rng, t) for t in (1, 2, 3)}
        written = a.write(list(tracks.values()))
        stored = _keys(cluster, redis_prefix)
        assert _lease_key(a, written) in stored
        assert b.cleanup() == 0  # another writer starting: A's part is leased, so it stays
        assert _keys(cluster, redis_prefix) == stored
        b.refresh()
        assert b.postings() == 0  # written, not yet published
        _publish(a, catalogs[0], written)
        assert not cluster.exists(_lease_key(a, written))  # released once the commit was seen
        b.refresh()
        assert b.postings() == sum(len(t.hashes) for t in tracks.values())
        assert _postings_of(b, tracks) == _model(tracks)
        np.testing.assert_array_equal(b.track_peaks(2), tracks[2].peaks)
        assert b.cleanup() == 0  # published: never a cleanup's to delete
        assert _postings_of(b, tracks) == _model(tracks)
    finally:
        a.close()
        b.close()


def test_a_dead_writers_part_is_purged_once_its_lease_lapses(
    redis_url: str, redis_prefix: str, cluster: RedisCluster, catalogs: list[Catalog]
) -> None:
    rng = np.random.default_rng(41)
    b = RedisClusterIndex(redis_url, catalogs[1])
    try:
        kept = {1: random_track(rng, 1)}
        b.add(list(kept.values()))
        before = _keys(cluster, redis_prefix)
        a = RedisClusterIndex(redis_url, catalogs[0], lease_ms=SHORT_LEASE_MS)
        written = a.write([random_track(rng, 5), random_track(rng, 6)])
        lease = _lease_key(a, written)
        assert cluster.exists(lease)  # held until now (checked at once: the short lease lapses soon)
        a.close()
        del a  # the writer is gone without publishing or aborting
        left = _keys(cluster, redis_prefix) - before
        assert len(left - {lease}) > 1  # its data stays behind it
        assert wait_for("the dead writer's lease to lapse", b.cleanup, timeout=60) == 1
        assert _keys(cluster, redis_prefix) == before  # every key it left is gone
        assert b.cleanup() == 0
        b.refresh()
        assert _postings_of(b, kept) == _model(kept)
    finally:
        b.close()


def test_a_writer_that_outlived_its_lease_cannot_publish(
    redis_url: str, redis_prefix: str, cluster: RedisCluster, catalogs: list[Catalog]
) -> None:
    """A hung writer whose part another writer's cleanup reclaimed: its publish fails (inside the
    transaction, which rolls back), and nothing of the batch is visible or left behind."""
    rng = np.random.default_rng(42)
    a = RedisClusterIndex(redis_url, catalogs[0], lease_ms=SHORT_LEASE_MS)
    b = RedisClusterIndex(redis_url, catalogs[1])
    try:
        kept = {1: random_track(rng, 1)}
        b.add(list(kept.values()))
        before = _keys(cluster, redis_prefix)
        tracks = {7: random_track(rng, 7)}
        written = a.write(list(tracks.values()))
        assert wait_for("the hung writer's lease to lapse", b.cleanup, timeout=60) == 1
        with pytest.raises(StoreError, match="lost its lease"):
            _publish(a, catalogs[0], written)
        assert _keys(cluster, redis_prefix) == before
        fresh = RedisClusterIndex(redis_url, catalogs[2])
        try:
            fresh.refresh(force=True)
            assert fresh.postings() == len(kept[1].hashes)
            assert _postings_of(fresh, tracks | kept) == _model(kept)
        finally:
            fresh.close()
        a.add([random_track(rng, 7)])  # its track id was never taken
        assert a.postings() > 0
    finally:
        a.close()
        b.close()


def test_a_part_published_after_cleanup_listed_it_is_kept(
    redis_url: str, redis_prefix: str, cluster: RedisCluster, catalogs: list[Catalog]
) -> None:
    """The race: cleanup lists the unpublished parts, the writer then publishes (and releases
    its lease); the check made just before deleting sees the part published."""
    rng = np.random.default_rng(43)
    a, b = RedisClusterIndex(redis_url, catalogs[0]), RedisClusterIndex(redis_url, catalogs[1])
    try:
        tracks = {1: random_track(rng, 1), 2: random_track(rng, 2)}
        written = a.write(list(tracks.values()))
        listed = b._unpublished_parts()
        assert listed == [written.parts[0].name]
        assert not b._purge_if_abandoned(listed[0])  # still leased
        _publish(a, catalogs[0], written)
        assert not cluster.exists(_lease_key(a, written))  # the lease no longer protects it
        stored = _keys(cluster, redis_prefix)
        assert not b._purge_if_abandoned(listed[0])  # published: kept
        assert _keys(cluster, redis_prefix) == stored
        b.refresh()
        assert _postings_of(b, tracks) == _model(tracks)
    finally:
        a.close()
        b.close()


@pytest.fixture()
def keyspace_events(cluster: RedisCluster) -> Iterator[None]:
    """Keyspace notifications of string commands on every master, for this test only."""
    nodes = cluster.get_primaries()
    before = [cluster.get_redis_connection(n).config_get("notify-keyspace-events") for n in nodes]
    for n in nodes:
        cluster.get_redis_connection(n).config_set("notify-keyspace-events", "K$")
    yield
    for n, old in zip(nodes, before, strict=True):
        cluster.get_redis_connection(n).config_set("notify-keyspace-events", old["notify-keyspace-events"])


def test_a_long_write_renews_its_lease_between_rounds(
    redis_url: str, cluster: RedisCluster, catalogs: list[Catalog], keyspace_events: None
) -> None:
    """A batch of ~13 MB of APPENDs goes in rounds of ROUND_BYTES, each one preceded by a
    renewal: a SET of the lease key, seen through the keyspace notifications of its node."""
    rng = np.random.default_rng(44)
    a = RedisClusterIndex(redis_url, catalogs[0])
    subscriptions = [cluster.get_redis_connection(n).pubsub() for n in cluster.get_primaries()]
    try:
        for sub in subscriptions:  # the part's name is not known yet: every lease key, every master
            sub.psubscribe(f"__keyspace@0__:{a.namespace}:lease:*")
            assert wait_for("the subscription", lambda sub=sub: sub.get_message(timeout=0.1), timeout=10)
        batch = [
            TrackPostings(
                t,
                rng.integers(0, 1 << 32, 12_000, dtype=np.uint64).astype(np.uint32),
                rng.integers(0, 100_000, 12_000).astype(np.int32),
                np.zeros((0, 2), dtype=np.int32),
            )
            for t in range(1, 15)
        ]
        written = a.write(batch)
        events: Counter[tuple[bytes, bytes]] = Counter()
        for sub in subscriptions:
            while (message := sub.get_message(timeout=1.0)) is not None:
                events[(message["channel"].rsplit(b":", 1)[1], message["data"])] += 1
        name = written.parts[0].name.encode()
        assert set(events) == {(name, b"set")}, events  # this write's lease only, set each time
        # taken, renewed for the peaks, before each of >= 3 rounds of APPENDs, and once written
        assert events[(name, b"set")] >= 6, events
        _publish(a, catalogs[0], written)
        assert a.postings() == 14 * 12_000
    finally:
        for sub in subscriptions:
            sub.close()
        a.close()


def test_refresh_after_many_small_publishes_matches_a_fresh_instance(redis_url: str, catalogs: list[Catalog]) -> None:
    """A reader refreshed after each of many small publications and removals, from two writers
    publishing out of slot order, holds the live set a fresh instance reads in one go."""
    rng = np.random.default_rng(45)
    writers = [RedisClusterIndex(redis_url, catalogs[0]), RedisClusterIndex(redis_url, catalogs[1])]
    reader = RedisClusterIndex(redis_url, catalogs[2])
    tracks: dict[int, TrackPostings] = {}
    try:
        reader.refresh(force=True)
        next_id = 1
        for step in range(30):
            pending = []
            for w in writers:  # both write, then publish in the other order: slots out of order
                batch = [random_track(rng, next_id + i) for i in range(int(rng.integers(1, 4)))]
                next_id += len(batch)
                pending.append((w, batch, w.write(batch)))
            for i, (w, batch, written) in reversed(list(enumerate(pending))):
                _publish(w, catalogs[i], written)
                tracks.update((p.track_id, p) for p in batch)
                reader.refresh()
            if step % 4 == 3:
                gone = [int(t) for t in rng.choice(sorted(tracks), size=3, replace=False)]
                with catalogs[0].transaction():
                    writers[0].remove(gone)
                for t in gone:
                    del tracks[t]
                reader.refresh()
        fresh = RedisClusterIndex(redis_url, catalogs[2])
        try:
            fresh.refresh(force=True)
            for slots_a, slots_b in zip(reader._slots.items(), fresh._slots.items(), strict=True):
                np.testing.assert_array_equal(slots_a, slots_b)
            assert reader.postings() == fresh.postings() == sum(len(t.hashes) for t in tracks.values())
            assert reader.stats() == fresh.stats()
            assert _postings_of(reader, tracks) == _postings_of(fresh, tracks) == _model(tracks)
            for tid in range(1, next_id):
                np.testing.assert_array_equal(reader.track_peaks(tid), fresh.track_peaks(tid))
        finally:
            fresh.close()
    finally:
        for index in (*writers, reader):
            index.close()


CONCURRENT_WRITER = """
import sys
import numpy as np
from pathlib import Path
from soundmark.catalog.sqlite import Catalog
from soundmark.index.base import TrackPostings
from soundmark.index.redis_cluster import RedisClusterIndex
root, url, first = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
catalog = Catalog(root)
index = RedisClusterIndex(url, catalog)
rng = np.random.default_rng(first)
for i in range(12):
    index.cleanup()  # as every writer does when it starts
    batch = [TrackPostings(first + 3 * i + k, rng.integers(0, 20_000, 2_000).astype(np.uint32),
             rng.integers(0, 5_000, 2_000).astype(np.int32), np.zeros((0, 2), dtype=np.int32)) for k in range(3)]
    index.add(batch)
catalog.close()
"""


def test_writer_processes_at_once_lose_nothing(
    redis_url: str, redis_prefix: str, cluster: RedisCluster, root: Path, catalogs: list[Catalog]
) -> None:
    """Two processes each add 12 batches into one index, each cleaning up before every batch
    (while the other's batch is in flight): every track of both is there, whole."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CONCURRENT_WRITER), str(root), redis_url, str(first)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for first in (1, 1001)
    ]
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    reader = RedisClusterIndex(redis_url, catalogs[2])
    try:
        reader.refresh(force=True)
        tracks: dict[int, TrackPostings] = {}
        for first in (1, 1001):  # the same tracks again, from the same seeds
            rng = np.random.default_rng(first)
            for i in range(12):
                for k in range(3):
                    h = rng.integers(0, 20_000, 2_000).astype(np.uint32)
                    t = rng.integers(0, 5_000, 2_000).astype(np.int32)
                    tracks[first + 3 * i + k] = TrackPostings(first + 3 * i + k, h, t, np.zeros((0, 2), np.int32))
        assert reader.postings() == 72 * 2_000
        assert _postings_of(reader, tracks) == _model(tracks)
        assert reader.cleanup() == 0
        assert len(cluster.smembers(f"{reader.namespace}:parts")) == 24  # no part left unpublished
    finally:
        reader.close()


def test_live_slots_match_a_model() -> None:
    """Random publications (mostly in slot order, some not) and removals, enough to merge both
    ways: every slot maps to the model's track id, and ``items()`` is the model."""
    rng = np.random.default_rng(46)
    live = LiveSlots()
    model: dict[int, int] = {}
    next_slot = 1
    held: list[tuple[int, int]] = []  # slot ranges taken, not yet published
    mains = set()  # the main arrays seen: a new one per merge
    for step in range(4_000):
        n = int(rng.integers(1, 12))
        held.append((next_slot, next_slot + n))
        next_slot += n
        if len(held) > 2 or rng.random() < 0.5:  # publish one of the held ranges, not always the oldest
            a, b = held.pop(int(rng.integers(0, len(held))))
            slots = np.arange(a, b, dtype=np.int64)
            tids = slots * 7 + 3
            live.add(slots[::-1], tids[::-1])  # any order in a batch
            model.update(zip(slots.tolist(), tids.tolist(), strict=True))
        if step % 500 == 499:  # remove about 70% of the live set, and some slots never live
            gone = rng.choice(sorted(model), size=int(len(model) * 0.7), replace=False)
            live.remove(np.concatenate([gone, [0, next_slot + 5]]))
            for s in gone.tolist():
                del model[s]
        elif rng.random() < 0.2 and model:
            gone = rng.choice(sorted(model), size=min(len(model), 3), replace=False)
            live.remove(gone)
            for s in gone.tolist():
                del model[s]
        assert len(live) == len(model)
        mains.add(id(live._main_slots))
    assert len(mains) >= 4  # merges happened, after additions and after removals
    assert len(live._side_slots) <= 2 * MIN_MERGE  # the side buffer grows only as it fills
    probe = np.arange(0, next_slot + 10, dtype=np.int64)
    want = np.array([model.get(s, -1) for s in probe.tolist()], dtype=np.int64)
    np.testing.assert_array_equal(live.track_ids(probe), want)
    np.testing.assert_array_equal(live.track_ids(probe[::-1]), want[::-1])
    slots, tids = live.items()
    assert slots.tolist() == sorted(model)
    assert tids.tolist() == [model[s] for s in sorted(model)]
    assert live.track_ids(np.zeros(0, dtype=np.int64)).shape == (0,)
    assert LiveSlots().track_ids(probe[:5]).tolist() == [-1] * 5


def test_a_reader_that_slept_through_a_removal_and_its_compaction_sees_neither_track_nor_postings(
    redis_url: str, tmp_path: Path
) -> None:
    """Compaction deletes the removed tracks' manifest rows; a reader that never saw the removal
    must not keep the track live (it reloads the manifest when rows were forgotten since it last looked)."""
    root = tmp_path / "db"
    root.mkdir()
    writer_cat, reader_cat = Catalog(root), Catalog(root)
    try:
        writer = RedisClusterIndex(redis_url, writer_cat)
        reader = RedisClusterIndex(redis_url, reader_cat)
        rng = np.random.default_rng(99)
        batch = [random_track(rng, tid) for tid in (1, 2)]
        with writer_cat.transaction():
            writer.publish(writer.write(batch))
        writer.refresh(force=True)
        reader.refresh(force=True)
        assert reader.stats().postings == sum(len(t.hashes) for t in batch)
        with writer_cat.transaction():
            writer.remove([1])
        writer.refresh(force=True)
        assert writer.compact() == 1
        reader.refresh(force=True)  # first look since before the removal
        fresh = RedisClusterIndex(redis_url, Catalog(root))
        fresh.refresh(force=True)
        assert reader.stats() == fresh.stats() and reader.stats().postings == len(batch[1].hashes)
        q = np.asarray(batch[0].hashes[:50], dtype=np.uint32)
        assert 1 not in set(np.asarray(reader.lookup(q, 10_000).track_ids).tolist())
    finally:
        writer_cat.close()
        reader_cat.close()
