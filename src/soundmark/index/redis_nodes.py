"""Many commands sent to a Redis Cluster grouped per node, all nodes at once.

Why not redis-py's own batching: ``mget_nonatomic`` sends one MGET per hash slot and
``ClusterPipeline`` packs and parses command by command, node by node in turn; INDEX-ENGINES.md
measured per-slot MGETs 4× slower than one pipeline per node. Here the caller hands over its
commands already in the Redis protocol (``index/redis_resp.py``) with the cluster slot of each;
the node of a slot comes from the client's slot map (as a table, rebuilt when the map changes);
every node's commands are written to its socket first, then the replies are read, so the nodes
work in parallel from one thread. Replies are parsed by a ``hiredis.Reader`` fed straight from
the socket (redis-py's ``read_response`` costs ~5 µs a reply in Python, a lookup reads ~1,000).

Redirections and failover: a command answered MOVED/ASK/TRYAGAIN/CLUSTERDOWN was not executed;
it is sent again through the ``RedisCluster`` client itself (as the arguments ``resend`` gives),
which follows the redirect, refreshes its slot map and retries through a failover. A broken
connection leaves it unknown whether the node executed what it was sent: idempotent commands
(GET, SET, DEL, MGET, the filter script) are then resent the same way; APPENDs (the script of a
bucket's APPENDs) are not, and fail with the connection error (their caller aborts the whole
write and deletes what it may have left).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import numpy as np
from redis import RedisCluster
from redis._parsers.base import BaseParser
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    InvalidResponse,
    MasterDownError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from soundmark.index.redis_resp import Ragged, from_buffer

Command = tuple[bytes, tuple[Any, ...]]  # (the key routing it, the whole command: ("GET", key), ...)
REDIRECTS = (AskError, TryAgainError, ClusterDownError, BusyLoadingError, MasterDownError)  # MOVED is an AskError
CHUNK_BYTES = 16 << 20  # command bytes sent to the nodes before their replies are read (bounds the buffers)
READ_SIZE = 1 << 20
_MORE = object()  # what the reader returns while a reply is incomplete


class NodeRouter:
    """Runs commands on the node owning each one's slot."""

    def __init__(self, client: RedisCluster):
        self.client = client
        # (the slot map it was built from, the nodes, the node of each slot): swapped whole, so
        # threads sharing the router never see a table of one map with the nodes of another
        self._table: tuple[object, list[Any], np.ndarray] = (None, [], np.zeros(0, dtype=np.int64))
        self._local = threading.local()  # a read buffer per thread

    def nodes_of(self, slots: np.ndarray) -> np.ndarray:
        """The index of the node serving each slot (an order to group commands by)."""
        return self._current()[2][np.asarray(slots, dtype=np.int64)]

    def _current(self) -> tuple[object, list[Any], np.ndarray]:
        """The node table of the client's slot map now (rebuilt when the map was replaced)."""
        cache = self.client.nodes_manager.slots_cache
        if cache is not self._table[0]:
            names: dict[str, int] = {}
            table = np.zeros(REDIS_CLUSTER_HASH_SLOTS, dtype=np.int64)
            nodes: list[Any] = []
            for slot, served in cache.items():
                node = served[0]
                if node.name not in names:
                    names[node.name] = len(nodes)
                    nodes.append(node)
                table[slot] = names[node.name]
            self._table = (cache, nodes, table)
        return self._table

    def _forget_map(self) -> None:
        """After a node failed: learn the slot map again (best effort: the cluster may still be
        electing a replica; the next call tries again), so later calls go where slots live now."""
        with contextlib.suppress(RedisError, RedisClusterException, OSError):
            self.client.nodes_manager.initialize()

    def run(self, commands: Sequence[Command], *, idempotent: bool) -> list[Any]:
        """The replies of ``commands`` in order (an error reply raises)."""
        packed = [_resp(c) for _, c in commands]
        ragged = from_buffer(b"".join(packed), np.array([len(p) for p in packed], dtype=np.int64))
        slots = np.array([key_slot(k) for k, _ in commands], dtype=np.int64)
        return self.run_resp(slots, ragged, lambda i: commands[i][1], idempotent=idempotent)

    def get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self.run([(k, ("GET", k)) for k in keys], idempotent=True)

    def run_resp(
        self, slots: np.ndarray, commands: Ragged, resend: Callable[[int], tuple[Any, ...]], *, idempotent: bool
    ) -> list[Any]:
        """The replies of ``commands`` (command i: ``commands`` string i, on the node serving
        ``slots[i]``), in order; ``resend(i)`` gives command i as arguments for the cluster
        client. An error reply other than a redirection raises."""
        replies: list[Any] = [None] * len(commands)
        retry: list[int] = []
        _map, nodes, table = self._current()
        node = table[np.asarray(slots, dtype=np.int64)]
        offsets = commands.offsets
        start = 0
        while start < len(commands):  # chunks of about CHUNK_BYTES
            end = max(start + 1, int(np.searchsorted(offsets, offsets[start] + CHUNK_BYTES, side="right")) - 1)
            end = min(end, len(commands))
            retry += self._scatter(nodes, node, commands, range(start, end), replies, idempotent)
            start = end
        if retry:
            self.client.nodes_manager.initialize()  # the slot map moved: learn it once
            for i in retry:
                replies[i] = self.client.execute_command(*resend(i))
        return replies

    def _scatter(
        self,
        nodes: list[Any],
        node: np.ndarray,
        commands: Ragged,
        indices: range,
        replies: list[Any],
        idempotent: bool,
    ) -> list[int]:
        """Send ``commands[indices]`` node by node, then read every node's replies; returns the
        indices to resend through the cluster client."""
        part = node[indices.start : indices.stop]
        order = np.argsort(part, kind="stable") + indices.start
        bounds = np.flatnonzero(np.r_[True, np.diff(node[order]) != 0, True])
        data = commands.buf
        off = commands.offsets
        sent: list[tuple[Any, Any, list[int]]] = []
        unread: set[int] = set()  # entries of ``sent`` whose replies were not all read
        retry: list[int] = []
        try:
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                idx = order[a:b]
                target = nodes[int(node[idx[0]])]
                cuts = np.flatnonzero(np.r_[True, np.diff(idx) != 1, True])  # runs of consecutive commands
                payload = b"".join(
                    data[off[idx[c]] : off[idx[d - 1] + 1]].tobytes()
                    for c, d in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
                )
                pool = self.client.get_redis_connection(target).connection_pool
                try:
                    conn = pool.get_connection()
                except (RedisConnectionError, RedisTimeoutError):
                    # A node that died (a master killed): nothing was sent to it. Resend its
                    # commands through the cluster client after the slot map is learnt again,
                    # or the table would keep pointing at the dead node.
                    if not idempotent:
                        self._forget_map()
                        raise
                    retry += idx.tolist()
                    continue
                sent.append((pool, conn, idx.tolist()))
                unread.add(len(sent) - 1)
                try:
                    conn.send_packed_command([payload])
                except (RedisConnectionError, RedisTimeoutError):
                    if not idempotent:
                        self._forget_map()
                        raise
                    retry += sent[-1][2]
                    sent[-1] = (pool, conn, [])  # nothing to read from this node: resend it all
            for k, (_pool, conn, idx_list) in enumerate(sent):
                try:
                    got = self._read(conn, len(idx_list))
                except (RedisConnectionError, RedisTimeoutError):
                    if not idempotent:
                        self._forget_map()
                        raise
                    retry += idx_list
                    continue
                finally:
                    unread.discard(k)
                failed = [j for j, reply in enumerate(got) if isinstance(reply, ResponseError)]
                for j in failed:
                    if not isinstance(got[j], REDIRECTS):
                        raise got[j]
                    retry.append(idx_list[j])
                _place(replies, idx_list, got)  # a redirected command's reply is replaced on resend
        finally:
            for k, (pool, conn, _idx) in enumerate(sent):
                if k in unread:  # replies still on the way: this connection cannot be reused
                    conn.disconnect()
                pool.release(conn)
        return retry

    def _read(self, conn: Any, n: int) -> list[Any]:
        """``n`` replies from ``conn``'s socket (error replies as exceptions, not raised); a
        connection that fails here is closed, so no half-read reply stays behind."""
        reader = hiredis.Reader(protocolError=InvalidResponse, replyError=BaseParser.parse_error, notEnoughData=_MORE)
        out: list[Any] = []
        buffer = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = self._local.buffer = bytearray(READ_SIZE)
        view = memoryview(buffer)
        try:
            sock = conn._sock  # redis-py's socket of this connection (connected by the send)
            while True:
                out.extend(iter(reader.gets, _MORE))  # every whole reply buffered, parsed in C
                if len(out) >= n:
                    break
                got = sock.recv_into(view)
                if got == 0:
                    raise RedisConnectionError("the Redis node closed the connection")
                reader.feed(view, 0, got)
        except TimeoutError as exc:
            conn.disconnect()
            raise RedisTimeoutError(f"reading from the Redis node: {exc}") from exc
        except (OSError, InvalidResponse, RedisConnectionError) as exc:
            conn.disconnect()
            raise RedisConnectionError(f"reading from the Redis node: {exc}") from exc
        return out


def _place(replies: list[Any], indices: list[int], got: list[Any]) -> None:
    """``replies[indices[j]] = got[j]`` for every j, a slice per run of consecutive indices."""
    if not indices:
        return
    idx = np.asarray(indices, dtype=np.int64)
    cuts = np.flatnonzero(np.r_[True, np.diff(idx) != 1, True]).tolist()
    for a, b in itertools.pairwise(cuts):
        replies[indices[a] : indices[a] + b - a] = got[a:b]


def _resp(command: tuple[Any, ...]) -> bytes:
    """One command in the Redis protocol."""
    out = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)
