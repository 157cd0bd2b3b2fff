"""A tracker that takes a stream over (a fresh tracker on another monitor) and is told the last
song reported there: the rest of that play is not reported again; the next song, and a later
replay of the same song, are."""

from __future__ import annotations

from soundmark.services.recognition_pool import WorkerMatch
from soundmark.streams.tracker import Change, SongTracker
from soundmark.streams.zone import format_timestamp, parse_timestamp

HOP, WINDOW = 4.0, 8.0


def m(track: int, offset: float) -> WorkerMatch:
    return WorkerMatch(track, offset, 30.0, 1.0, 1.0)


def run(tracker: SongTracker, t_from: float, t_to: float, track: int, aired: float, duration: float) -> list[Change]:
    """Windows every hop over [t_from, t_to) hearing ``track`` whose beginning lies at ``aired``."""
    changes: list[Change] = []
    t = t_from
    while t < t_to:
        changes += tracker.window(t, t + WINDOW, [m(track, t - aired)], duration)
        t += HOP
    return changes


def test_the_rest_of_a_play_reported_by_the_previous_monitor_is_not_reported_again() -> None:
    tracker = SongTracker(gap=8.0, hop=HOP, floor=1000.0)
    tracker.reported(7, start=980.0, duration=60.0)  # announced by the other node, first heard at 980
    assert run(tracker, 1000.0, 1032.0, track=7, aired=970.0, duration=60.0) == []  # still that play
    nxt = run(tracker, 1032.0, 1060.0, track=8, aired=1032.0, duration=40.0)
    assert [(c.kind, c.play.track_id) for c in nxt] == [("announce", 8)]
    # The same song again after its play had ended is a new play.
    replay = tracker.flush() + run(tracker, 1100.0, 1120.0, track=7, aired=1100.0, duration=60.0)
    assert [(c.kind, c.play.track_id) for c in replay] == [("end", 8), ("announce", 7)]


def test_without_a_reported_song_the_play_on_air_is_reported() -> None:
    tracker = SongTracker(gap=8.0, hop=HOP, floor=1000.0)
    changes = run(tracker, 1000.0, 1020.0, track=7, aired=970.0, duration=60.0)
    assert [(c.kind, c.play.track_id) for c in changes] == [("announce", 7)]
    assert changes[0].play.start == 1000.0  # first heard here, not when it began on air


def test_a_stored_timestamp_reads_back_in_its_zone() -> None:
    for zone in ("+03:00", "UTC", "Europe/Moscow", "-0530"):
        assert parse_timestamp(format_timestamp(1_700_000_123.0, zone), zone) == 1_700_000_123.0
    assert parse_timestamp("yesterday", "UTC") is None
