"""Leases on the parts of the Redis index, so that several writers can share one store's index.

Owned by ``index/redis_cluster.py``. Writers on several machines (each with its own store
directory and lock, one shared catalog) write into one namespace at once, and every writer
deletes at its start what dead writers left (``cleanup``). A part that has been written but not
yet published looks just like a dead writer's, unless its writer holds a lease on it:
``N:lease:<part>``, a key with an expiry. The writer takes it (SET NX PX) before anything else of
the write, renews it (SET XX PX: a renewal cannot create the key) before each round of commands
and in its publish, and deletes it once the publication committed or the part was deleted. The
value says who holds it and how far it got (``host:pid stage``), for an operator.

Why this is safe (``RedisClusterIndex.cleanup``): a lease that is gone never comes back (part
names are unique), so a writer that lost its lease fails at its next renewal and goes no further
(it deletes what it wrote). Cleanup deletes a part only if, checked just before and in this
order, its lease is gone and the catalog does not list it: a part whose publication committed
after cleanup listed the parts is then seen published (the lease is released only after the
commit). What is left open: a writer that pauses for longer than the lease between its publish's
renewal and the commit (milliseconds apart) could commit a part that is being deleted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress

from redis import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from soundmark.errors import StoreError
from soundmark.index.redis_keys import KeyNames

# How long a lease lasts unrenewed, in ms. A live writer renews it at least every ROUND_BYTES of
# commands (``index/redis_cluster.py``: well under 10 s even on a loaded machine) and at publish,
# and between its write and its publish waits at most for the catalog's write lock (SQLite's
# busy_timeout: 30 s): 120 s is 4x the longest gap. It is also how long the part of a writer that
# died waits until the next writer's cleanup may delete it: invisible bytes for two minutes.
LEASE_MS = 120_000


class PartLeases:
    """The leases of one store's parts; ``errors(doing)`` turns a Redis failure into a StoreError."""

    def __init__(
        self,
        client: RedisCluster,
        keys: KeyNames,
        errors: Callable[[str], AbstractContextManager[None]],
        lease_ms: int = LEASE_MS,
    ):
        self._client = client
        self._keys = keys
        self._errors = errors
        self.lease_ms = lease_ms

    def key(self, part: str) -> bytes:
        return self._keys.key(b"lease", part)

    def _value(self, stage: str) -> bytes:
        return f"{socket.gethostname()}:{os.getpid()} {stage}".encode()

    def take(self, part: str) -> None:
        """Lease ``part``, a name never used before."""
        with self._errors("taking a lease on an index part"):
            self._client.set(self.key(part), self._value("writing"), px=self.lease_ms, nx=True)

    def renew(self, part: str, stage: str) -> None:
        """Extend the lease on ``part`` by a whole lease time, noting ``stage``; StoreError if it
        lapsed (another writer's cleanup may be deleting the part: this write must go no further)."""
        with self._errors("renewing an index part's lease"):
            held = self._client.set(self.key(part), self._value(stage), px=self.lease_ms, xx=True)
        if not held:
            raise StoreError(
                f"the write of index part {part} lost its lease (it paused for over {self.lease_ms / 1000:g} s),"
                " so another writer may be deleting it: add the batch again"
            )

    def held(self, part: str) -> bool:
        """Whether a writer holds a lease on ``part`` now."""
        with self._errors("reading an index part's lease"):
            return bool(self._client.exists(self.key(part)))

    def release(self, part: str) -> None:
        with self._errors("releasing an index part's lease"):
            self._client.delete(self.key(part))

    def release_committed(self, part: str) -> None:
        """Release the lease of a part whose publication committed; a failure is harmless (the
        part is published, the lease lapses), so it does not fail the refresh that calls this."""
        with suppress(RedisError, RedisClusterException):
            self._client.delete(self.key(part))
