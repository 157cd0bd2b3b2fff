"""Sliding-window matches → songs played: one ``Play`` per song, however many windows heard it.

Pure logic, no I/O: feed it each window's wall-clock span and matches, get back what happened.
A play reports what was *heard* on the stream: ``start`` is the wall-clock start of the first
window that matched the song (never before the previous song was last heard), ``end`` where the
last matching window surely still carried it. The song's position (``window start − offset in the
song``, the moment it would have gone on air if played from its beginning) is kept as ``aired``:
it bounds the play by the song's catalog duration and recognises a tail heard again, but it is
never reported — a radio that joins a song half-way, or a stream added mid-song, did not play the
part before. A song ends when another song is heard, when its catalog duration is over, or after
``gap`` seconds without a match.

A tracker that takes a stream over from another monitor (monitor leases, several nodes) starts
fresh but is told the last song reported on the stream (``reported``): a play of that track that
overlaps it in time — the song still on air when the stream changed hands — is not reported
again (see ``window``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from soundmark.services.recognition_pool import WorkerMatch

EXACT_OFFSET = 0.5  # seconds: an offset above this was not clamped, so the start it gives is exact
SAME_PLAY_SLACK = 6.0  # seconds: a re-heard song whose start agrees this well is the play already reported


@dataclass
class Play:
    track_id: int
    start: float  # wall-clock second (epoch) the song was first heard on the stream
    end: float  # wall-clock second it was last heard (at most aired + duration)
    duration: float  # catalog duration of the track
    best: WorkerMatch
    alternatives: list[WorkerMatch] = field(default_factory=list)
    exact: bool = False  # ``aired`` comes from an unclamped offset
    aired: float = 0.0  # where the song's beginning would lie on the stream's clock (not reported)
    windows: int = 1
    announced: bool = False

    @property
    def play_length(self) -> int:
        return max(0, round(self.end - self.start))


@dataclass(frozen=True)
class Change:
    kind: str  # "announce": the song is surely playing (callbacks=before); "end": it finished
    play: Play


class SongTracker:
    def __init__(self, gap: float, hop: float = 5.0, floor: float = 0.0):
        self.gap = gap
        self.hop = hop
        self.floor = floor  # epoch second monitoring began: nothing is reported as heard before it
        self.current: Play | None = None
        self._last: Play | None = None
        self._reported: tuple[int, float, float] | None = None  # (track, start, duration) reported elsewhere

    def reported(self, track_id: int, start: float, duration: float) -> None:
        """The song ``track_id`` was reported as first heard at ``start`` (epoch s) by the monitor
        that had the stream before: a play of it overlapping that one is the same play."""
        self._reported = (track_id, start, duration)

    def _reported_elsewhere(self, track_id: int, aired: float) -> bool:
        """Whether a play of ``track_id`` whose beginning lies at ``aired`` overlaps the play the
        previous monitor reported: that one began between ``start − duration`` and ``start`` on
        the song's clock (it was first heard somewhere inside the song), so the two overlap when
        ``aired`` lies in that span, give or take ``SAME_PLAY_SLACK``. A later replay of the song
        has its beginning after the first play's end, outside the span."""
        if self._reported is None or self._reported[0] != track_id:
            return False
        _, start, duration = self._reported
        return start - duration - SAME_PLAY_SLACK <= aired <= start + SAME_PLAY_SLACK

    def window(self, t0: float, t1: float, matches: list[WorkerMatch], duration: float) -> list[Change]:
        """One analysed window [t0, t1] (epoch seconds) and its matches, best first.

        ``duration`` is the catalog duration of ``matches[0]``'s track (ignored without matches).
        """
        if not matches:
            return self.nothing(t0, t1)
        top = matches[0]
        aired = t0 - top.offset_seconds
        exact = top.offset_seconds > EXACT_OFFSET
        cur = self.current
        if cur is not None and cur.track_id == top.track_id:
            if exact and not cur.exact:  # it began inside the first window: first heard then
                cur.aired, cur.exact = aired, True
                cur.start = max(cur.start, min(aired, cur.end))
            cur.windows += 1
            cur.end = max(cur.end, self._heard_until(t0, t1, cur.aired, cur.duration))
            if top.score > cur.best.score:
                cur.best = top
                cur.alternatives = _alternatives(matches)
            return self._announce(cur)
        last = self._last
        if last is not None and last.track_id == top.track_id and abs(aired - last.aired) < SAME_PLAY_SLACK:
            return []  # the tail of a song already reported (e.g. heard again across a transition)
        if self._reported_elsewhere(top.track_id, aired):
            return self._finish()  # still the play the previous monitor reported: not a new one
        changes = self._finish()
        # First heard: this window's start (the offset says how far into the song the stream
        # joined it, not that the stream played what came before), or where inside the window the
        # song began, and not before the previous song was last heard nor before monitoring began.
        start = max(t0 + top.lead_seconds, self.floor)
        prev = cur or last
        if prev is not None:
            start = max(start, prev.end)
        end = max(start, self._heard_until(t0, t1, aired, duration))
        play = Play(top.track_id, start, end, duration, top, _alternatives(matches), exact=exact, aired=aired)
        self.current = play
        return changes + self._announce(play)

    def _heard_until(self, t0: float, t1: float, aired: float, duration: float) -> float:
        """Where a song heard in [t0, t1] surely played to: past the window's middle by half a hop
        (the next window, a hop later, tells whether it went on), within its catalog duration."""
        return min(t1, (t0 + t1) / 2 + self.hop / 2, aired + duration)

    def nothing(self, t0: float, t1: float) -> list[Change]:
        """A window with no match (unknown audio, talk, silence)."""
        cur = self.current
        if cur is None:
            return []
        if t0 >= cur.aired + cur.duration or t1 - cur.end > self.gap:
            return self._finish()
        return []

    def flush(self) -> list[Change]:
        """The stream stopped: whatever was playing has ended."""
        return self._finish()

    def _announce(self, play: Play) -> list[Change]:
        if not play.announced and (play.exact or play.windows >= 2):
            play.announced = True
            return [Change("announce", play)]
        return []

    def _finish(self) -> list[Change]:
        cur = self.current
        self.current = None
        if cur is None:
            return []
        self._last = cur
        return [Change("end", cur)]


def _alternatives(matches: list[WorkerMatch], slack: float = 2.0) -> list[WorkerMatch]:
    """Other catalog entries aligned with the best one (near-duplicate releases of the same song)."""
    top = matches[0]
    return [m for m in matches[1:] if m.track_id != top.track_id and abs(top.offset_seconds - m.offset_seconds) < slack]
