"""The Redis Cluster index backend against a real cluster (3 masters + 3 replicas on loopback,
started by scripts/servers.sh): the index contract, plus what only a shared server shows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from contract import BIG_CAP, Backend, Driver, IndexContract, expected, fill, got, query_hashes, random_track
from redis import RedisCluster
from redis.cluster import ClusterNode

from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import Catalog
from soundmark.errors import StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.base import TrackPostings
from soundmark.index.factory import open_index
from soundmark.index.redis_url import parse_redis_url
from soundmark.store import NewTrack, Store
from support import wait_for


def _catalog(root: Path) -> Catalog:
    root.mkdir(parents=True, exist_ok=True)
    return Catalog(root)


@pytest.fixture()
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    c = _catalog(tmp_path / "db")
    yield c
    c.close()


def _driver(url: str, catalog: Catalog) -> Driver:
    return Driver(open_index("redis", Path("."), catalog, url=url), catalog)  # the root is not used


def _keys(cluster_url: str, prefix: str) -> list[bytes]:
    """Every key under ``prefix`` (``prefix:...`` and the hash keys' ``{prefix:...``) on every master."""
    location = parse_redis_url(cluster_url)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])
    try:
        return [
            k
            for node in client.get_primaries()
            for pattern in (f"{prefix}:*", f"{{{prefix}:*")
            for k in client.get_redis_connection(node).scan_iter(match=pattern)
        ]
    finally:
        client.close()


class TestRedisClusterIndex(IndexContract):
    @pytest.fixture()
    def backend(self, redis_url: str, catalog: Catalog) -> Iterator[Backend]:
        d = _driver(redis_url, catalog)
        yield d
        d.backend.close()  # type: ignore[attr-defined]


def test_postings_of_many_tracks_are_found(redis_url: str, catalog: Catalog) -> None:
    rng = np.random.default_rng(30)
    d = _driver(redis_url, catalog)
    tracks: dict[int, TrackPostings] = {}
    for first in range(1, 301, 50):
        batch = [random_track(rng, tid, hash_space=50_000) for tid in range(first, first + 50)]
        d.add(batch)
        tracks.update((p.track_id, p) for p in batch)
    assert d.index.postings() == sum(len(t.hashes) for t in tracks.values())
    for tid in (1, 150, 300):
        q = np.unique(tracks[tid].hashes)
        found = got(d.index.lookup(q, BIG_CAP), q)
        mine = {(h, t) for (h, t_id, t) in found if t_id == tid}
        assert mine == set(zip(tracks[tid].hashes.tolist(), tracks[tid].times.tolist(), strict=True))


def test_same_hits_as_the_segment_backend(redis_url: str, tmp_path: Path) -> None:
    """Grouped-per-node lookups give what the segment files give for the same batches."""
    rng = np.random.default_rng(31)
    seg_cat, red_cat = _catalog(tmp_path / "seg"), _catalog(tmp_path / "red")
    try:
        segments = Driver(open_index("segments", tmp_path / "seg", seg_cat), seg_cat)
        redis = _driver(redis_url, red_cat)
        for first, n in ((1, 5), (6, 1), (7, 8)):
            batch = [random_track(rng, tid) for tid in range(first, first + n)]
            segments.add(batch)
            redis.add(batch)
        assert segments.index.postings() == redis.index.postings()
        q = query_hashes(rng, n=3000)
        for cap in (0, 2, 5, BIG_CAP):
            assert got(redis.index.lookup(q, cap), q) == got(segments.index.lookup(q, cap), q)
        for tid in (1, 6, 14, 99):
            np.testing.assert_array_equal(redis.index.track_peaks(tid), segments.index.track_peaks(tid))
        for d in (segments, redis):
            d.remove([3, 9])
        assert got(redis.index.lookup(q, BIG_CAP), q) == got(segments.index.lookup(q, BIG_CAP), q)
    finally:
        seg_cat.close()
        red_cat.close()


CRASHING_WRITER = """
import os, sys
import numpy as np
from pathlib import Path
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import Catalog
from soundmark.index.redis_cluster import RedisClusterIndex
from soundmark.index.base import TrackPostings
cat = Catalog(Path(sys.argv[1]))
index = RedisClusterIndex(sys.argv[2], cat, lease_ms=2000)  # its part is fair game 2 s after it dies
rng = np.random.default_rng(5)
batch = [TrackPostings(t, rng.integers(0, 3000, 300).astype(np.uint32), rng.integers(0, 5000, 300).astype(np.int32),
         np.array([[1, 2]], dtype=np.int32)) for t in (7, 8)]
index.write(batch)
os._exit(3)  # dies before publishing
"""


def test_a_writer_that_dies_before_publishing_leaves_nothing_visible(
    redis_url: str, redis_cluster: str, redis_prefix: str, catalog: Catalog, tmp_path: Path
) -> None:
    d = _driver(redis_url, catalog)
    rng = np.random.default_rng(32)
    d.add([random_track(rng, 1)])
    before = set(_keys(redis_cluster, redis_prefix))
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_WRITER), str(tmp_path / "db"), redis_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stderr
    assert len(set(_keys(redis_cluster, redis_prefix)) - before) > 0  # it did write
    d.index.refresh(force=True)
    q = np.arange(3000, dtype=np.uint32)
    assert {tid for _, tid, _ in got(d.index.lookup(q, BIG_CAP), q)} == {1}
    assert d.index.track_peaks(7).shape == (0, 2)
    assert wait_for("the dead writer's lease to lapse", d.writer.cleanup, timeout=60) == 1
    assert set(_keys(redis_cluster, redis_prefix)) == before  # every key it left is gone
    assert d.writer.cleanup() == 0
    d.add([random_track(rng, 7)])  # the dead writer's ids are free
    assert d.index.track_peaks(7).shape[1] == 2


def test_remove_then_compact_deletes_the_data(
    redis_url: str, redis_cluster: str, redis_prefix: str, catalog: Catalog
) -> None:
    rng = np.random.default_rng(33)
    d = _driver(redis_url, catalog)
    victim = random_track(rng, 1)
    keeper = random_track(rng, 2)
    d.add([victim, keeper])
    full = len(_keys(redis_cluster, redis_prefix))
    d.remove([1])
    assert len(_keys(redis_cluster, redis_prefix)) == full  # hidden, still stored
    assert d.writer.compact() == 1
    left = set(_keys(redis_cluster, redis_prefix))
    only_victim = np.array(sorted(set(victim.hashes.tolist()) - set(keeper.hashes.tolist())), dtype=np.uint32)
    assert len(only_victim) > 0
    assert not left & set(d.backend.hash_keys(only_victim))  # type: ignore[attr-defined]
    assert set(d.backend.hash_keys(keeper.hashes)) <= left  # type: ignore[attr-defined]
    assert len(left) < full
    q = np.unique(np.concatenate([victim.hashes, keeper.hashes]))
    assert {tid for _, tid, _ in got(d.index.lookup(q, BIG_CAP), q)} == {2}
    assert d.index.postings() == len(keeper.hashes)
    assert d.writer.compact() == 0


def test_stores_on_one_cluster_do_not_see_each_other(redis_cluster: str, tmp_path: Path) -> None:
    """Different prefixes, and one prefix shared by two catalogs: each store sees its own tracks,
    and one store's cleanup and compaction leave the other's keys alone."""
    rng = np.random.default_rng(34)
    prefixes = ["test-iso-a", "test-iso-b", "test-iso-b"]
    catalogs = [_catalog(tmp_path / f"c{i}") for i in range(3)]
    try:
        drivers = [_driver(f"{redis_cluster}/{p}", c) for p, c in zip(prefixes, catalogs, strict=True)]
        tracks = [random_track(rng, 1) for _ in drivers]  # the same track id in every store
        for d, t in zip(drivers, tracks, strict=True):
            d.add([t])
        q = np.arange(3000, dtype=np.uint32)
        for d, t in zip(drivers, tracks, strict=True):
            d.writer.cleanup()
            d.writer.compact()
            assert d.index.postings() == len(t.hashes)
            found = got(d.index.lookup(q, BIG_CAP), q)
            assert sorted(found.elements()) == sorted(
                zip(t.hashes.astype(np.int64).tolist(), [1] * len(t.hashes), t.times.tolist(), strict=True)
            )
            np.testing.assert_array_equal(d.index.track_peaks(1), t.peaks)
    finally:
        for c in catalogs:
            c.close()
        from servers import delete_prefix

        for p in set(prefixes):
            delete_prefix(redis_cluster, p)


def test_an_unreachable_cluster_is_a_store_error(catalog: Catalog) -> None:
    with pytest.raises(StoreError, match=r"cannot reach the Redis cluster at redis://127\.0\.0\.1:1/"):
        open_index("redis", Path("."), catalog, url="redis://127.0.0.1:1")


def test_peaks_read_once_are_not_served_after_a_removal(redis_url: str, catalog: Catalog) -> None:
    rng = np.random.default_rng(38)
    d = _driver(redis_url, catalog)
    t = random_track(rng, 1)
    d.add([t, random_track(rng, 2)])
    for _ in range(2):  # the second read comes from the process's cache
        np.testing.assert_array_equal(d.index.track_peaks(1), t.peaks)
    d.remove([1])
    assert d.index.track_peaks(1).shape == (0, 2)
    other = _driver(redis_url, catalog)  # another process's view: read from the cluster
    assert other.index.track_peaks(1).shape == (0, 2)
    assert other.index.track_peaks(2).shape[1] == 2


def test_a_store_of_the_first_key_layout_is_refused(redis_url: str, catalog: Catalog) -> None:
    """Layout 1 (unpadded hex in the hash keys) recorded no layout: its tracks are not misread."""
    d = _driver(redis_url, catalog)
    d.add([random_track(np.random.default_rng(37), 1)])
    d.backend.close()  # type: ignore[attr-defined]
    with catalog.transaction():
        catalog.conn.execute("DELETE FROM redis_index_state WHERE key = 'layout'")
    with pytest.raises(StoreError, match=r"older soundmark \(key layout 1, this one reads 2\)"):
        open_index("redis", Path("."), catalog, url=redis_url)


def test_a_bad_url_is_a_store_error(catalog: Catalog) -> None:
    with pytest.raises(StoreError, match="is not host:port"):
        open_index("redis", Path("."), catalog, url="redis://localhost")


def _new_track(rng: np.random.Generator) -> NewTrack:
    t = random_track(rng, 0)
    return NewTrack(TrackMeta(title="t", artist="a"), 60.0, None, None, t.hashes, t.times, t.peaks)


def test_a_store_records_its_index_url(redis_url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(35)
    db = tmp_path / "db"
    with Store(db, FingerprintParams(), create=True, index_url=redis_url) as store:
        with store.writer() as w:
            ids = w.commit([_new_track(rng), _new_track(rng)])
        postings = store.index.postings()
        assert postings > 0
    with Store(db, FingerprintParams()) as again:  # no URL given: the recorded one
        assert again.index.postings() == postings
        assert again.index.track_peaks(ids[1]).shape[1] == 2
    with pytest.raises(StoreError, match="keep that key prefix"):
        Store(db, FingerprintParams(), index_url=redis_url.rsplit("/", 1)[0] + "/other")
    on_disk = tmp_path / "segments-db"
    with Store(on_disk, FingerprintParams(), create=True) as plain, plain.writer() as w:
        w.commit([_new_track(rng)])
    with pytest.raises(StoreError, match="keeps its index in its own files"):
        Store(on_disk, FingerprintParams(), index_url=redis_url)


def _failover(cluster_url: str, key: bytes) -> None:
    """Promote a replica of the master owning ``key``'s slot (CLUSTER FAILOVER, the graceful
    switch an operator makes) and wait until the cluster agrees."""
    location = parse_redis_url(cluster_url)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])
    try:
        old = client.nodes_manager.get_node_from_slot(client.keyslot(key))

        def replicas() -> list[ClusterNode]:
            client.nodes_manager.initialize()  # a replica that just switched roles is learnt again
            return [
                n
                for n in client.get_nodes()
                if client.get_redis_connection(n).info("replication").get("master_port") == old.port
            ]

        new = cast(list[ClusterNode], wait_for("a replica of the slot's master", replicas, timeout=30))[0]

        def switched() -> bool:
            return (
                client.get_redis_connection(new).info("replication")["role"] == "master"
                and client.get_redis_connection(old).info("replication")["role"] == "slave"
                and all(
                    client.get_redis_connection(n).execute_command("CLUSTER INFO")["cluster_state"] == "ok"
                    for n in (old, new)
                )
            )

        for attempt in range(3):  # a replica still syncing ignores the request: ask again
            client.get_redis_connection(new).execute_command("CLUSTER FAILOVER")
            try:
                wait_for("the replica to take over", switched, timeout=15)
                break
            except AssertionError:
                if attempt == 2:
                    raise
    finally:
        client.close()


def test_a_failover_is_followed(redis_url: str, redis_cluster: str, catalog: Catalog) -> None:
    """A replica promoted under a backend whose slot map is stale: its lookups are answered
    MOVED by the old master and resent where the slot lives now; the same hits, and writes go on."""
    rng = np.random.default_rng(36)
    d = _driver(redis_url, catalog)
    tracks = fill(d, rng, [4])
    q = query_hashes(rng)
    before = got(d.index.lookup(q, BIG_CAP), q)
    assert before == expected(tracks, q)
    key = d.backend.hash_keys(np.array([int(q[0])], dtype=np.uint32))[0]  # type: ignore[attr-defined]
    _failover(redis_cluster, key)
    try:
        assert got(d.index.lookup(q, BIG_CAP), q) == before
        tracks.update(fill(d, rng, [2], first_id=10))
        assert got(d.index.lookup(q, BIG_CAP), q) == expected(tracks, q)
        np.testing.assert_array_equal(d.index.track_peaks(11), tracks[11].peaks)
    finally:
        _failover(redis_cluster, key)  # give the old master its role back
