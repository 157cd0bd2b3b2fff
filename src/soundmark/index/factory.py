"""The one place a store's fingerprint index backend is chosen.

``Store`` calls ``open_index`` and from then on sees only the ports of ``index/base.py``; no
other module imports a backend (tests/test_layers.py enforces it). A new backend (the scale-out
issue's Redis cluster) is one more branch here, one more name in ``INDEX_BACKENDS``, and the
contract suite of ``tests/index/contract.py`` run against it.

Backends:
  "segments"  immutable memory-mapped segment files under the store directory, their manifest in
              the catalog file (index/segments.py) — what every store on disk uses
  "memory"    everything in RAM, nothing persisted (index/memory.py) — for tests and tools
  "redis"     a Redis Cluster named by ``url`` (``SOUNDMARK_INDEX_URL``), its bookkeeping in the
              catalog (index/redis_cluster.py) — the scale-out index
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from soundmark.index.base import IndexBackend, IndexDatabase
from soundmark.index.memory import MemoryIndex
from soundmark.index.segments import SegmentIndex

IndexBackendName = Literal["segments", "memory", "redis"]
INDEX_BACKENDS: tuple[str, ...] = get_args(IndexBackendName)


def open_index(backend: str, root: Path, db: IndexDatabase, *, url: str = "") -> IndexBackend:
    """The index of the store at ``root`` whose catalog is ``db``, as backend ``backend``
    (``url``: where a server backend lives; "redis" needs one).

    Nothing is loaded yet: call ``refresh()`` to see what is committed.
    """
    if backend == "segments":
        return SegmentIndex(root, db)
    if backend == "memory":
        return MemoryIndex()
    if backend == "redis":
        from soundmark.index.redis_cluster import RedisClusterIndex  # redis-py loads only for a store that uses it

        return RedisClusterIndex(url, db)
    raise ValueError(f"unknown index backend {backend!r} (known: {', '.join(INDEX_BACKENDS)})")
