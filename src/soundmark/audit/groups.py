"""Shared spans of two files → one described pair; pairs → groups of files holding common audio.

Kinds of pair (``COVER`` of a file is "nearly all of it"):
  same      the shared audio covers nearly all of both files (a re-encode, a remaster)
  contains  it covers nearly all of one file only: that file lies inside the other (a radio
            edit inside the album version, a track inside a mix); the container is listed first
  overlap   it covers nearly all of neither (two edits sharing a stretch, a shared intro)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

COVER = 0.9  # share of a file's duration that counts as all of it
SNAP_SECONDS = 1.0  # a span this close to a file's start or end reaches it (the last hashes of a
#                     stretch anchor up to a second before its last sound; fades hold few peaks)


@dataclass(frozen=True)
class Segment:
    """One aligned stretch, in seconds: ``a_start``–``a_end`` of file A is ``b_start``–``b_end`` of B."""

    a_start: float
    a_end: float
    b_start: float
    b_end: float

    @property
    def seconds(self) -> float:
        return self.a_end - self.a_start

    def swapped(self) -> Segment:
        return Segment(self.b_start, self.b_end, self.a_start, self.a_end)


@dataclass(frozen=True)
class PairOverlap:
    """Two files sharing audio; ``a``/``b`` are the audit's file keys."""

    a: int
    b: int
    kind: str  # same | contains | overlap
    segments: tuple[Segment, ...]  # strongest alignment first
    shared_seconds: float  # audio in common (the segments' lengths summed)
    fraction_a: float  # share of A's duration inside the segments
    fraction_b: float
    votes: int  # aligned hashes over all segments
    peak_share: float  # share of A's peaks met by B's in the strongest segment

    @property
    def offset_seconds(self) -> float:
        """Where A's start falls in B along the strongest alignment (B time = A time + offset)."""
        s = self.segments[0]
        return s.b_start - s.a_start


@dataclass(frozen=True)
class Group:
    members: tuple[int, ...]  # file keys, in the order the audit listed the files
    pairs: tuple[PairOverlap, ...]


def snap(start: float, end: float, duration: float) -> tuple[float, float]:
    """A span in one file, clipped to it and reaching its ends when within ``SNAP_SECONDS``."""
    start, end = max(0.0, start), min(duration, end)
    if start <= SNAP_SECONDS:
        start = 0.0
    if end >= duration - SNAP_SECONDS:
        end = duration
    return start, end


def _covered(intervals: Iterable[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        lo = max(lo, reach)
        if hi > lo:
            total += hi - lo
        reach = max(reach, hi)
    return total


def describe(a: int, b: int, segments: Sequence[Segment], duration_a: float, duration_b: float,
             votes: int, peak_share: float) -> PairOverlap:  # fmt: skip
    """The pair (A, B) with its kind; swapped so that a container comes first."""
    fa = _covered((s.a_start, s.a_end) for s in segments) / duration_a if duration_a > 0 else 0.0
    fb = _covered((s.b_start, s.b_end) for s in segments) / duration_b if duration_b > 0 else 0.0
    fa, fb = min(fa, 1.0), min(fb, 1.0)
    kind = "same" if min(fa, fb) >= COVER else "contains" if max(fa, fb) >= COVER else "overlap"
    pair = PairOverlap(a, b, kind, tuple(segments), round(sum(s.seconds for s in segments), 2),
                       round(fa, 3), round(fb, 3), votes, round(peak_share, 3))  # fmt: skip
    if kind == "contains" and fa > fb:  # A lies inside B: B first
        pair = replace(pair, a=b, b=a, segments=tuple(s.swapped() for s in segments),
                       fraction_a=pair.fraction_b, fraction_b=pair.fraction_a)  # fmt: skip
    return pair


def group_pairs(pairs: Iterable[PairOverlap], order: Sequence[int]) -> list[Group]:
    """Connected groups of files (any chain of pairs joins them), each with its pairs; groups
    and their members follow ``order`` (the files' keys as listed)."""
    rank = {key: i for i, key in enumerate(order)}
    parent: dict[int, int] = {}

    def root(k: int) -> int:
        parent.setdefault(k, k)
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    pairs = list(pairs)
    for p in pairs:
        ra, rb = root(p.a), root(p.b)
        if ra != rb:
            parent[max(ra, rb, key=rank.__getitem__)] = min(ra, rb, key=rank.__getitem__)
    members: dict[int, list[int]] = {}
    for k in parent:
        members.setdefault(root(k), []).append(k)
    groups = []
    for r in sorted(members, key=rank.__getitem__):
        keys = tuple(sorted(members[r], key=rank.__getitem__))
        inside = tuple(sorted((p for p in pairs if root(p.a) == r),
                              key=lambda p: (rank[p.a], rank[p.b])))  # fmt: skip
        groups.append(Group(keys, inside))
    return groups
