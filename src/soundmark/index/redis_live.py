"""Which slots of the Redis index are live, kept in RAM by every process that reads it.

Owned by ``index/redis_cluster.py``: a lookup maps each posting's slot to its track id (~10^5
postings a query, a binary search each), and ``refresh()`` applies each publication and removal
as it lands. Rebuilding one sorted array on every change cost O(tracks) a publish (seconds at a
million tracks, on every reader, for every batch); here:

- Two levels, each a pair of arrays sorted by slot (``slots``, and ``tids``: the track id of
  each, -1 once removed): ``main``, rebuilt only by a merge, and ``side``, which takes every
  publication. Slots come from one counter (INCRBY) and are never reused, so a batch's slots are
  nearly always above every slot in ``side``: they are appended in place, in a buffer that
  doubles (amortised O(1) a track). A batch whose slots lie below some of ``side``'s (another
  writer took later slots and published first) rebuilds ``side`` around them.
- ``side`` is merged into ``main`` when it holds more than 1/16 of ``main`` (O(n), every n/16
  tracks: amortised O(16) a track), so a lookup's second binary search stays cheap.
- A removal marks its entry dead (tid -1) in place, found by binary search; the dead are dropped
  by a merge once they are half the entries (each removal: O(1) amortised).
So publishing b tracks costs O(b log b + log n) amortised (plus a copy of ``side``, at most 1/16
of the set, for a batch published out of slot order); removing b tracks O(b log n).

Threads: changes must come one at a time (``Store.refresh`` serialises them); lookups need no
lock. A change publishes a new ``_View`` (one attribute, swapped whole) and never rewrites what
an older view shows, except a removal's tid -1: a lookup racing it sees the track either live or
removed, posting by posting, never another track's id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_CAPACITY = 1024  # entries of a new side buffer (16 KiB)
MIN_MERGE = 4096  # side entries (or dead entries) tolerated before a merge, however small main is
MERGE_FRACTION = 16  # side is merged into main when it holds more than len(main) / this


@dataclass(frozen=True)
class _View:
    """What a lookup reads: both levels, each sorted by slot."""

    main_slots: np.ndarray
    main_tids: np.ndarray
    side_slots: np.ndarray
    side_tids: np.ndarray


def _find(slots: np.ndarray, tids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The tid of each of ``wanted`` in the sorted ``slots``; -1 where absent."""
    if len(slots) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(slots, wanted), len(slots) - 1)
    return np.where(slots[at] == wanted, tids[at], -1)


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


class LiveSlots:
    """The live tracks' slots, each with its track id."""

    def __init__(self) -> None:
        self._main_slots, self._main_tids = _empty(), _empty()
        self._side_slots = np.zeros(MIN_CAPACITY, dtype=np.int64)
        self._side_tids = np.full(MIN_CAPACITY, -1, dtype=np.int64)
        self._side_n = 0
        self._live = 0
        self._dead = 0
        self._view = _View(_empty(), _empty(), _empty(), _empty())

    def __len__(self) -> int:
        return self._live

    def track_ids(self, slots: np.ndarray) -> np.ndarray:
        """The track id (int64) of each of ``slots``; -1 where no live track has it."""
        s = np.asarray(slots, dtype=np.int64)
        v = self._view
        out = _find(v.main_slots, v.main_tids, s)
        if len(v.side_slots):
            miss = np.flatnonzero(out < 0)
            out[miss] = _find(v.side_slots, v.side_tids, s[miss])
        return out

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """The live slots (sorted) and their track ids, as new arrays."""
        v = self._view
        slots = np.concatenate([v.main_slots, v.side_slots])
        tids = np.concatenate([v.main_tids, v.side_tids])
        live = tids >= 0
        slots, tids = slots[live], tids[live]
        order = np.argsort(slots, kind="stable")
        return slots[order], tids[order]

    def add(self, slots: np.ndarray, track_ids: np.ndarray) -> None:
        """Make ``slots`` live as ``track_ids``: slots this set has never held (a slot is never
        reused; a track given another slot is removed from its old one first)."""
        s = np.asarray(slots, dtype=np.int64)
        t = np.asarray(track_ids, dtype=np.int64)
        if len(s) == 0:
            return
        order = np.argsort(s, kind="stable")
        s, t = s[order], t[order]
        n, total = self._side_n, self._side_n + len(s)
        if n == 0 or s[0] > self._side_slots[n - 1]:  # above every side slot: append in place
            if total > len(self._side_slots):  # a bigger buffer; older views keep the old one
                self._side_slots, self._side_tids = self._grown(total)
            self._side_slots[n:total], self._side_tids[n:total] = s, t
        else:  # among the side slots: a new buffer, so that no older view changes
            at = np.searchsorted(self._side_slots[:n], s)
            slots_buf, tids_buf = self._grown(total)
            slots_buf[:total] = np.insert(self._side_slots[:n], at, s)
            tids_buf[:total] = np.insert(self._side_tids[:n], at, t)
            self._side_slots, self._side_tids = slots_buf, tids_buf
        self._side_n = total
        self._live += len(s)
        if total > max(MIN_MERGE, len(self._main_slots) // MERGE_FRACTION):
            self._merge()
        else:
            self._publish()

    def remove(self, slots: np.ndarray) -> None:
        """Mark ``slots`` dead; those not live are ignored."""
        s = np.asarray(slots, dtype=np.int64)
        if len(s) == 0:
            return
        gone = 0
        for level_slots, level_tids in (
            (self._main_slots, self._main_tids),
            (self._side_slots[: self._side_n], self._side_tids[: self._side_n]),
        ):
            if len(level_slots) == 0:
                continue
            at = np.minimum(np.searchsorted(level_slots, s), len(level_slots) - 1)
            at = np.unique(at[(level_slots[at] == s) & (level_tids[at] >= 0)])
            level_tids[at] = -1  # in place: see the module docstring
            gone += len(at)
        self._live -= gone
        self._dead += gone
        if self._dead > max(MIN_MERGE, self._live):
            self._merge()

    def _grown(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """New side buffers holding at least ``size`` (twice the old capacity, if that is too
        small), the side entries copied in."""
        capacity = len(self._side_slots)
        if size > capacity:
            capacity = max(size, 2 * capacity)
        slots = np.zeros(capacity, dtype=np.int64)
        tids = np.full(capacity, -1, dtype=np.int64)
        n = self._side_n
        slots[:n], tids[:n] = self._side_slots[:n], self._side_tids[:n]
        return slots, tids

    def _merge(self) -> None:
        """Rebuild main from every live entry of both levels; side starts again empty."""
        side_slots, side_tids = self._side_slots[: self._side_n], self._side_tids[: self._side_n]
        at = np.searchsorted(self._main_slots, side_slots)
        slots = np.insert(self._main_slots, at, side_slots)
        tids = np.insert(self._main_tids, at, side_tids)
        live = tids >= 0
        self._main_slots, self._main_tids = slots[live], tids[live]
        self._side_slots = np.zeros(MIN_CAPACITY, dtype=np.int64)
        self._side_tids = np.full(MIN_CAPACITY, -1, dtype=np.int64)
        self._side_n = 0
        self._dead = 0
        self._publish()

    def _publish(self) -> None:
        n = self._side_n
        self._view = _View(self._main_slots, self._main_tids, self._side_slots[:n], self._side_tids[:n])
