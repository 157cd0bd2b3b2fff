"""The NumPy encoders of Redis commands (index/redis_resp.py, index/redis_keys.py) against the
plain Python encoding of the same commands, a real cluster reading what they send, and the
peak code and cache (index/redis_peaks.py)."""

from __future__ import annotations

import itertools

import numpy as np
from redis import RedisCluster
from redis.cluster import ClusterNode

from soundmark.index import redis_resp as R
from soundmark.index.redis_keys import BUCKETS, KeyNames
from soundmark.index.redis_nodes import NodeRouter
from soundmark.index.redis_peaks import MAX_PEAK_FRAME, PeakCache, decode_peaks, encode_peaks
from soundmark.index.redis_url import parse_redis_url


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_numbers_as_text() -> None:
    rng = np.random.default_rng(1)
    v = np.r_[0, 1, 9, 10, 15, 16, 99, 100, 255, 256, 4095, 4096, 2**32 - 1, 2**40, rng.integers(0, 2**32, 500)]
    assert R.hexadecimal(v).tolist() == [format(int(x), "x").encode() for x in v]
    assert R.decimal(v).tolist() == [str(int(x)).encode() for x in v]
    assert R.decimal(np.zeros(0, dtype=np.int64)).tolist() == []


def test_concat_short_and_long_strings() -> None:
    rng = np.random.default_rng(2)
    short = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.integers(0, 9, 300)]
    long = [bytes(rng.integers(0, 256, int(n), dtype=np.uint8)) for n in rng.integers(0, 3000, 300)]
    parts = [R.from_buffer(b"".join(x), np.array([len(s) for s in x])) for x in (short, long, short)]
    assert R.concat(parts).tolist() == [a + b + c for a, b, c in zip(short, long, short, strict=True)]


def test_commands_are_what_redis_py_would_send() -> None:
    keys = [b"k%d" % i for i in range(10)]
    vals = [b"v" * i for i in range(10)]
    bounds = np.array([0, 3, 4, 10])
    k = R.bulk(R.from_buffer(b"".join(keys), np.array([len(x) for x in keys]))).groups(bounds)
    v = R.bulk(R.from_buffer(b"".join(vals), np.array([len(x) for x in vals]))).groups(bounds)
    got = R.command_set([b"EVAL", b"return 1"], [k, v], np.diff(bounds), numkeys=True).tolist()
    want = [
        _resp(b"EVAL", b"return 1", b"%d" % (b - a), *keys[a:b], *vals[a:b])
        for a, b in itertools.pairwise(bounds.tolist())
    ]
    assert got == want


def test_hash_keys_have_one_length_and_the_bucket_in_their_tag() -> None:
    names = KeyNames(b"pre:abc")
    h = np.array([0, 1, 1023, 1024, 0xDEADBEEF, 2**32 - 1], dtype=np.uint32)
    keys = names.hash_keys(h)
    assert keys[4] == b"{pre:abc:2ef}:h:deadbeef"
    assert {len(k) for k in keys} == {names.key_length}
    assert keys[0].startswith(b"{pre:abc:000}") and keys[3].startswith(b"{pre:abc:000}")
    assert R.Ragged(names.hash_bulks(h).buf, names.hash_bulks(h).offsets).tolist() == [
        b"$%d\r\n%s\r\n" % (len(k), k) for k in keys
    ]
    assert len(set(names.bucket_slots.tolist())) > BUCKETS * 0.9  # buckets spread over the slots


def test_the_router_runs_encoded_commands_on_a_real_cluster(redis_cluster: str, redis_prefix: str) -> None:
    location = parse_redis_url(redis_cluster)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])
    try:
        router = NodeRouter(client)
        names = KeyNames(redis_prefix.encode())
        h = np.arange(0, 5000, 7, dtype=np.uint32)
        keys = names.hash_keys(h)
        router.run([(k, ("SET", k, b"x%d" % i)) for i, k in enumerate(keys)], idempotent=True)
        buckets = (h & (BUCKETS - 1)).astype(np.int64)
        order = np.argsort(buckets, kind="stable")
        sb = buckets[order]
        bounds = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1], True])
        cmds = R.command_set([b"MGET"], [names.hash_bulks(h[order]).groups(bounds)], np.diff(bounds))
        replies = router.run_resp(names.bucket_slots[sb[bounds[:-1]]], cmds, lambda g: (), idempotent=True)
        got = [v for r in replies for v in r]
        assert got == [b"x%d" % i for i in order.tolist()]
        assert router.get([keys[0], names.key(b"p", 12345)]) == [b"x0", None]
    finally:
        client.close()


def test_the_peak_cache_keeps_a_byte_budget_and_hands_out_copies() -> None:
    cache = PeakCache(max_bytes=3 * 800)
    peaks = {s: np.full((100, 2), s, dtype=np.int32) for s in range(5)}  # 800 bytes each
    for s, p in peaks.items():
        cache.put(s, p)
    assert cache.get(0) is None and cache.get(1) is None  # the oldest went
    got = cache.get(2)
    assert got is not None
    got[:] = -1  # a caller's change stays its own
    np.testing.assert_array_equal(cache.get(2), peaks[2])
    cache.put(5, np.zeros((100, 2), dtype=np.int32))  # 3 was used least recently, 2 just now
    assert cache.get(3) is None and cache.get(2) is not None
    cache.put(9, np.zeros((1000, 2), dtype=np.int32))  # over the whole budget: not kept
    assert cache.get(9) is None and cache.get(5) is not None


def test_peaks_round_trip_through_their_code() -> None:
    rng = np.random.default_rng(3)
    p = np.stack([np.sort(rng.integers(0, MAX_PEAK_FRAME + 1, 500)), rng.integers(0, 1024, 500)], 1).astype(np.int32)
    np.testing.assert_array_equal(decode_peaks(encode_peaks(p)), p)
