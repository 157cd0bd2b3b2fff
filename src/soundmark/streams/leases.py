"""Which monitor runs which stream when several ``serve --role monitor`` nodes share one catalog:
leases in the ``streams`` rows (``owner`` = a node id, ``lease_until`` = unix time), and the node
itself in ``nodes`` (who is alive, for operators; catalog/schema_nodes.py).

A monitor's ``claim`` runs one short write transaction every ``RENEW_SECONDS``: it heartbeats the
node, renews the leases it holds and takes every stream of a live token whose lease has run out
(or that no one holds), and answers the streams it holds now. Write transactions are serialised
(SQLite's one writer; on PostgreSQL the catalog adapter's transaction-scoped advisory lock), so
the conditional UPDATE is an atomic claim: two nodes never hold one stream. ``release`` (clean
shutdown) hands every lease back at once, so another node takes the streams at its next claim.

The numbers: a lease of ``LEASE_SECONDS`` (20 s) renewed every ``RENEW_SECONDS`` (5 s) survives
three missed renewals (a slow round, a catalog failover) before it is lost; a node that died
right after renewing leaves its streams for at most 20 s, and the next claim of a live node comes
at most 5 s later: a stream is taken over within 25 s (< 30 s). A node that cannot renew stops
its streams itself before its own lease runs out (``StreamManager.fence``), so two nodes run one
stream at the same time only while their clocks disagree.

On one node (SQLite, or a single monitor) the same code holds every lease.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from soundmark.catalog.sql import Connection
from soundmark.catalog.writer import Database, write_async

LEASE_SECONDS = 20.0  # a stream's lease: three renewals may fail before another node takes it
RENEW_SECONDS = 5.0  # how often a monitor renews (and claims): takeover ≤ LEASE + RENEW = 25 s
NODE_FORGET_SECONDS = 24 * 3600.0  # a node row not seen for a day is deleted (a node that died)


def new_node_id() -> str:
    """A node id, random per process start (a restarted node is a new node)."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Node:
    """This process as the ``nodes`` table lists it."""

    id: str
    role: str  # api | monitor | jobs | all
    host: str
    pid: int
    started_at: float

    @classmethod
    def this_process(cls, role: str, node_id: str | None = None) -> Node:
        return cls(node_id or new_node_id(), role, socket.gethostname(), os.getpid(), time.time())


class StreamLeases:
    """The leases of one monitor node over the store's ``streams`` rows."""

    def __init__(self, db: Database, node: Node, *, lease: float = LEASE_SECONDS, fencing: bool = True):
        self._db, self.node, self.lease = db, node, lease
        # Whether a node that cannot renew stops its streams: where other nodes may take them
        # (a shared catalog). On SQLite's one node a catalog held busy by a long write (an
        # ingest) must not stop monitoring: no one else would take the streams over.
        self.fencing = fencing

    async def claim(self, now: float | None = None) -> tuple[set[int], float]:
        """Heartbeat, renew and take leases: the ids of the streams this node holds, and until when."""
        at = time.time() if now is None else now
        until = at + self.lease
        held: set[int] = await write_async(self._db, _claim(self.node, at, until))
        return held, until

    async def release(self) -> None:
        """Hand every lease back (clean shutdown) and leave the ``nodes`` table."""
        await write_async(self._db, _release(self.node.id))


def _claim(node: Node, now: float, until: float) -> Callable[[Connection], set[int]]:
    def write(c: Connection) -> set[int]:
        c.execute(
            "INSERT INTO nodes(id, role, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            (node.id, node.role, node.host, node.pid, node.started_at, now),
        )
        c.execute("DELETE FROM nodes WHERE seen_at < ?", (now - NODE_FORGET_SECONDS,))
        rows = c.execute(
            "UPDATE streams SET owner=?, lease_until=? WHERE (owner=? OR owner IS NULL OR lease_until<?) "
            "AND token_id IN (SELECT id FROM tokens WHERE revoked_at IS NULL) RETURNING id",
            (node.id, until, node.id, now),
        ).fetchall()
        return {int(r[0]) for r in rows}

    return write


def _release(node_id: str) -> Callable[[Connection], None]:
    def write(c: Connection) -> None:
        c.execute("UPDATE streams SET owner=NULL, lease_until=0 WHERE owner=?", (node_id,))
        c.execute("DELETE FROM nodes WHERE id=?", (node_id,))

    return write
