"""The key names of one store's index on a Redis Cluster (layout 2), built in bulk.

Owned by ``index/redis_cluster.py`` (whose docstring lists what each key holds). ``N`` is the
URL's prefix + ":" + the store's namespace:
  {N:bbb}:h:hhhhhhhh  the postings of one hash: ``bbb`` its bucket (the low 10 bits, 3 hex
                      digits), ``hhhhhhhh`` the hash (8 hex digits). The hash tag puts a bucket's
                      keys in one cluster slot, so one MGET or script reads or writes them all.
  N:<kind>:<name>     everything else (peaks, hash lists, parts, counters)
Every hash key has the same length, so a lookup's or a write's thousands of keys are one NumPy
matrix (a row per key, already framed as a RESP bulk string), not thousands of Python objects.
Layout 1 (a commit of the same day) had unpadded hex digits; ``index/redis_manifest.py``
records the layout of every store, and a store of another layout is refused.
"""

from __future__ import annotations

import numpy as np
from redis.crc import key_slot

from soundmark.index.redis_resp import Ragged

LAYOUT = "2"
BUCKETS = 1024  # hash keys are spread over this many cluster slots per store (a power of two)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_columns(values: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint8: each value in ``width`` hex digits, most significant first."""
    shifts = np.arange(4 * (width - 1), -1, -4, dtype=np.uint32)
    return _HEX[(values.astype(np.uint32)[:, None] >> shifts[None, :]) & np.uint32(15)]


class KeyNames:
    """The keys of the store whose key namespace (prefix + ":" + namespace) is ``ns``."""

    def __init__(self, ns: bytes):
        self.ns = ns
        self._tag = b"{" + ns + b":"
        self.key_length = len(self._tag) + 3 + len(b"}:h:") + 8
        self._bulk_head = b"$%d\r\n" % self.key_length
        self.bulk_length = len(self._bulk_head) + self.key_length + 2
        row = np.frombuffer(self._bulk_head + self._tag + b"000}:h:00000000\r\n", dtype=np.uint8)
        self._template = row
        self._bucket_at = len(self._bulk_head) + len(self._tag)
        self._hash_at = self._bucket_at + 3 + 4
        tags = [self._tag + b"%03x}" % b for b in range(BUCKETS)]
        self.bucket_slots = np.array([key_slot(t) for t in tags], dtype=np.int64)  # cluster slot per bucket

    def key(self, kind: bytes, name: int | str) -> bytes:
        return self.ns + b":" + kind + b":" + str(name).encode()

    def hash_bulk_rows(self, hashes: np.ndarray) -> np.ndarray:
        """(n, bulk_length) uint8: the key of each of ``hashes`` (uint32) as a RESP bulk string."""
        h = np.asarray(hashes, dtype=np.uint32)
        rows = np.tile(self._template, (len(h), 1))
        rows[:, self._bucket_at : self._bucket_at + 3] = _hex_columns(h & np.uint32(BUCKETS - 1), 3)
        rows[:, self._hash_at : self._hash_at + 8] = _hex_columns(h, 8)
        return rows

    def hash_bulks(self, hashes: np.ndarray) -> Ragged:
        """The keys of ``hashes`` (uint32), each framed as a RESP bulk string, end to end."""
        rows = self.hash_bulk_rows(hashes)
        return Ragged(rows.reshape(-1), np.arange(len(rows) + 1, dtype=np.int64) * self.bulk_length)

    def appends(self, hashes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(n, width) uint8: ``APPEND <key of hashes[i]> <values[i]>`` in RESP, a row each;
        ``values`` is (n, k) uint8, every value k bytes (one matrix per value length)."""
        head = np.frombuffer(b"*3\r\n$6\r\nAPPEND\r\n", dtype=np.uint8)
        size = np.frombuffer(b"$%d\r\n" % values.shape[1], dtype=np.uint8)
        a, b, c = len(head), len(head) + self.bulk_length, len(head) + self.bulk_length + len(size)
        rows = np.empty((len(hashes), c + values.shape[1] + 2), dtype=np.uint8)
        rows[:, :a] = head
        rows[:, a:b] = self.hash_bulk_rows(hashes)
        rows[:, b:c] = size
        rows[:, c:-2] = values
        rows[:, -2:] = np.frombuffer(b"\r\n", dtype=np.uint8)
        return rows

    def hash_keys(self, hashes: np.ndarray) -> list[bytes]:
        """The keys of ``hashes`` as bytes (for the few commands sent one by one)."""
        start = len(self._bulk_head)
        return [b[start : start + self.key_length] for b in self.hash_bulks(hashes).tolist()]


def buckets_of(hashes: np.ndarray) -> np.ndarray:
    return (np.asarray(hashes, dtype=np.uint32) & np.uint32(BUCKETS - 1)).astype(np.int64)
