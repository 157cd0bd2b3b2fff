"""When to merge which segments: a tiered (log-structured) merge policy.

Every add writes one small segment. Rewriting the whole index whenever there are more than a
few (the old rule) rewrites each posting O(n) times over n adds; this policy rewrites each
posting O(log n) times and keeps O(log n) segments:

- A segment's tier is how many times ``TIER_FACTOR`` its postings exceed ``TIER_BASE_POSTINGS``
  (every segment below that size is tier 0).
- When a tier holds ``TIER_FACTOR`` segments, its ``TIER_FACTOR`` oldest are merged into one,
  which lands in the next tier (its size is at least ``TIER_FACTOR`` times the tier's floor);
  merges cascade until no tier is full. So at most ``TIER_FACTOR - 1`` segments sit in each
  tier, and a posting is rewritten once per tier it climbs: log_F(catalog / base) times.
- Removals only hide tracks (tombstones). A segment whose tombstoned postings reach
  ``DEAD_REWRITE_FRACTION`` of it is rewritten alone, so removed tracks' bytes go without
  touching the rest of the index.

A full compaction (``compact(1)``: ``soundmark`` commands that compact, removals through the
services) still merges everything into one segment.

Pure functions on segment sizes; ``index/segments.py`` applies the plans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# How many segments of one tier are merged at once, and so how much larger each tier is than the
# one below: 8 keeps at most 7 segments a tier (about 40 at 1M tracks) while rewriting each posting
# about log_8(catalog / base) times (~6 at 1M tracks).
TIER_FACTOR = 8
# The floor of tier 1, in postings (about 10 minutes of audio): smaller segments are all tier 0.
TIER_BASE_POSTINGS = 1 << 16
# A segment with at least this share of its postings in removed tracks is rewritten without them.
DEAD_REWRITE_FRACTION = 0.3


@dataclass(frozen=True)
class SegmentSize:
    """What the policy knows of a live segment (``name`` oldest first in the list it gets)."""

    name: str
    postings: int
    dead_postings: int = 0  # postings of tombstoned tracks still stored in it


def tier(postings: int) -> int:
    """0 below ``TIER_BASE_POSTINGS``, then one more each time the size grows ``TIER_FACTOR``-fold."""
    t, floor = 0, TIER_BASE_POSTINGS
    while postings >= floor:
        t += 1
        floor *= TIER_FACTOR
    return t


def next_merge(segments: Sequence[SegmentSize]) -> list[str]:
    """The segments to merge next (oldest first), or [] when the index is in shape.

    Rewrites of mostly-dead segments come first (they shrink the index), then the lowest full
    tier (merging it may fill the next one: call again until it returns [])."""
    for s in segments:
        if s.postings and s.dead_postings >= DEAD_REWRITE_FRACTION * s.postings:
            return [s.name]
    by_tier: dict[int, list[str]] = {}
    for s in segments:
        by_tier.setdefault(tier(s.postings - s.dead_postings), []).append(s.name)
    for t in sorted(by_tier):
        if len(by_tier[t]) >= TIER_FACTOR:
            return by_tier[t][:TIER_FACTOR]
    return []


def max_segments(total_postings: int) -> int:
    """The most segments the policy leaves for an index of ``total_postings`` (for tests and
    sizing): ``TIER_FACTOR - 1`` in each tier up to the one the whole index would reach."""
    return (TIER_FACTOR - 1) * (tier(total_postings) + 1)


@runtime_checkable
class MergePolicyIndex(Protocol):
    """An index writer with segments to keep in shape after writes (the segment backend); the
    store calls it after adds, other backends simply lack it."""

    def merge_by_policy(self) -> int:
        """Run ``next_merge`` until it has nothing to do; returns how many segments were merged."""
        ...
