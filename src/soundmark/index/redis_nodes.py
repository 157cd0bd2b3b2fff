"""Many single-key commands sent to a Redis Cluster grouped per node, all nodes at once.

Why not redis-py's own batching: ``mget_nonatomic`` sends one MGET per hash slot (a query's
thousands of keys touch thousands of slots) and ``ClusterPipeline`` packs commands node by node in
turn; INDEX-ENGINES.md measured per-slot MGETs 4× slower than one pipeline per node. Here each
key's slot comes from redis-py's ``key_slot``, its node from the client's slot map; the commands of
every node are written to its socket first and the replies read afterwards, so the nodes work in
parallel from one thread.

Redirections and failover: a command answered MOVED/ASK/TRYAGAIN/CLUSTERDOWN was not executed;
it is sent again through the ``RedisCluster`` client itself, which follows the redirect, refreshes
its slot map and retries through a failover. A broken connection leaves it unknown whether the
node executed what it was sent: idempotent commands (GET, SET, DEL, the filter script) are then
resent the same way; APPENDs (the script of a bucket's APPENDs) are not, and fail with the
connection error (their caller aborts the whole write and deletes what it may have left).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Command = tuple[bytes, tuple[Any, ...]]  # (the key routing it, the whole command: ("GET", key), ...)
REDIRECTS = (AskError, TryAgainError, ClusterDownError, BusyLoadingError, MasterDownError)  # MOVED is an AskError
CHUNK = 20_000  # commands sent to one node before its replies are read (bounds the buffers)


class NodeRouter:
    """Runs single-key commands on the node owning each key's slot."""

    def __init__(self, client: RedisCluster):
        self.client = client

    def run(self, commands: Sequence[Command], *, idempotent: bool) -> list[Any]:
        """The replies of ``commands`` in order (an error reply raises)."""
        replies: list[Any] = [None] * len(commands)
        retry: list[int] = []
        for start in range(0, len(commands), CHUNK * 4):
            retry += self._scatter(commands, range(start, min(len(commands), start + CHUNK * 4)), replies, idempotent)
        if retry:
            self.client.nodes_manager.initialize()  # the slot map moved: learn it once
            for i in retry:
                replies[i] = self.client.execute_command(*commands[i][1])
        return replies

    def get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self.run([(k, ("GET", k)) for k in keys], idempotent=True)

    def _scatter(self, commands: Sequence[Command], indices: range, replies: list[Any], idempotent: bool) -> list[int]:
        """Send ``commands[indices]`` node by node, then read every node's replies; returns the
        indices to resend through the cluster client."""
        manager = self.client.nodes_manager
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i in indices:
            node = manager.get_node_from_slot(key_slot(commands[i][0]))
            groups.setdefault(node.name, (node, []))[1].append(i)
        sent: list[tuple[Any, Any, list[int]]] = []
        retry: list[int] = []
        try:
            for node, idx in groups.values():
                pool = self.client.get_redis_connection(node).connection_pool
                conn = pool.get_connection()
                sent.append((pool, conn, idx))
                try:
                    conn.send_packed_command([_resp([commands[i][1] for i in idx])])
                except (RedisConnectionError, RedisTimeoutError):
                    if not idempotent:
                        raise
                    idx_copy = list(idx)
                    idx.clear()  # nothing to read from this node: resend it all
                    retry += idx_copy
            for _pool, conn, idx in sent:
                for n, i in enumerate(idx):
                    try:
                        replies[i] = conn.read_response(disable_decoding=True)
                    except ResponseError as exc:
                        if not _redirect(exc):
                            raise
                        retry.append(i)
                    except (RedisConnectionError, RedisTimeoutError):
                        if not idempotent:
                            raise
                        retry += idx[n:]
                        break
        finally:
            for pool, conn, _idx in sent:
                pool.release(conn)
        return retry


def _resp(commands: Sequence[tuple[Any, ...]]) -> bytes:
    """``commands`` in the Redis protocol, as one buffer (redis-py's packer costs ~15 µs a
    command in Python: most of a lookup's time at thousands of keys)."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


def _redirect(exc: ResponseError) -> bool:
    """An error reply saying the command ran nowhere and must go elsewhere or wait."""
    return isinstance(exc, REDIRECTS)
