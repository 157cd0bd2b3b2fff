"""Where a Redis Cluster index lives: ``SOUNDMARK_INDEX_URL`` read into nodes and a key prefix.

Form: ``redis://host:port[,host:port...][/prefix]`` — one or more of the cluster's nodes (the
client discovers the others) and an optional key prefix (default ``soundmark``), so several
deployments can share one cluster. Every store adds its own namespace under the prefix (a random
id kept in its catalog), so two stores never see each other's keys even under one prefix.

Parsing only: no connection is made here (``settings.py`` checks the value at start with it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "soundmark"
_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # no braces: a hash tag would put every key in one slot
_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]")


@dataclass(frozen=True)
class RedisLocation:
    nodes: tuple[tuple[str, int], ...]  # (host, port) of the startup nodes
    prefix: str  # the first part of every key

    @property
    def url(self) -> str:
        nodes = ",".join(f"{h}:{p}" for h, p in self.nodes)
        return f"redis://{nodes}/{self.prefix}"


def parse_redis_url(url: str) -> RedisLocation:
    """``url`` as a ``RedisLocation``; a ``ValueError`` saying what is wrong otherwise."""
    text = url.strip()
    if not text.startswith("redis://"):
        raise ValueError(f"index URL {url!r}: expected redis://host:port[,host:port...][/prefix]")
    rest = text[len("redis://") :]
    nodes_part, _, prefix = rest.partition("/")
    prefix = prefix.strip("/") or DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"index URL {url!r}: the key prefix {prefix!r} may hold only letters, digits, _ . -")
    nodes: list[tuple[str, int]] = []
    for item in nodes_part.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"index URL {url!r}: {item.strip()!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return RedisLocation(tuple(nodes), prefix)
