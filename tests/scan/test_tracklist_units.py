"""The tracklist's internals on synthetic window hits and peaks (match/tracklist.py)."""

from __future__ import annotations

import dataclasses
from itertools import combinations

import numpy as np
import pytest

from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.tracklist import (
    ScanSettings,
    Tracklist,
    TrackSegment,
    WindowHit,
    _dilated_codes,
    _fit_alignment,
    _max_subarray,
    peak_code_span,
)
from soundmark.store import Store

NO_REFINE = ScanSettings(refine=False)


@pytest.fixture()
def track(store: Store) -> tuple[int, float]:
    """(id, duration in seconds) of one stored 40 s piece."""
    t = store.catalog.list_tracks()[0]
    return t.id, t.duration


def _hit(track_id: int, start: float, ref_offset: float, score: float = 8.0, speed: float = 1.0) -> WindowHit:
    return WindowHit(track_id, start, start + 10.0, ref_offset, speed, score)


def _run(tl: Tracklist, hits: list[WindowHit]) -> list[TrackSegment]:
    for h in sorted(hits, key=lambda x: x.window_start):
        tl.add_hits([h], now=h.window_start)
    return tl.finish()


# merging window hits -----------------------------------------------------------------------------


def test_consistent_windows_merge_into_one_segment(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    hits = [_hit(tid, w, 5.0 + w, score) for w, score in ((0, 8.0), (5, 4.0), (10, 7.0), (15, 5.0))]
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.track_id == tid
    assert seg.windows == 4
    assert seg.score == 8.0  # the best window
    assert seg.speed == pytest.approx(1.0)
    assert (seg.start, seg.end) == pytest.approx((0.0, 25.0))
    assert (seg.ref_start, seg.ref_end) == pytest.approx((5.0, 30.0))


def test_a_weak_window_never_opens_a_segment_but_extends_one(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    s = NO_REFINE
    weak = s.extend_score
    assert _run(Tracklist(store, s), [_hit(tid, 0, 5.0, weak), _hit(tid, 5, 10.0, weak)]) == []
    (seg,) = _run(Tracklist(store, s), [_hit(tid, 0, 5.0, s.min_score), _hit(tid, 5, 10.0, weak)])
    assert seg.windows == 2
    assert seg.end == pytest.approx(15.0)


def test_a_single_window_needs_twice_the_minimum_score(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    s = NO_REFINE
    assert _run(Tracklist(store, s), [_hit(tid, 5, 10.0, 2 * s.min_score - 0.1)]) == []
    (seg,) = _run(Tracklist(store, s), [_hit(tid, 5, 10.0, 2 * s.min_score)])
    assert seg.windows == 1


def test_offset_tolerance_grows_with_the_distance_between_windows(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    # Predicted offset at the second window: 15.0; tolerance 1 + 0.03 · 5 s = 1.15 s.
    tl = Tracklist(store, NO_REFINE)
    tl.add_hits([_hit(tid, 0, 10.0)], now=0)
    tl.add_hits([_hit(tid, 5, 16.1)], now=5)
    assert len(tl.open) == 1 and len(tl.open[0].hits) == 2
    tl = Tracklist(store, NO_REFINE)
    tl.add_hits([_hit(tid, 0, 10.0)], now=0)
    tl.add_hits([_hit(tid, 5, 16.2)], now=5)
    assert len(tl.open) == 2  # a strong window elsewhere in the reference opens its own segment
    tl.add_hits([_hit(tid, 5, 16.2 - 5.0, score=3.0)], now=5)  # weak and nowhere: dropped
    assert sorted(len(o.hits) for o in tl.open) == [1, 1]


def test_other_tracks_never_merge(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    tl = Tracklist(store, NO_REFINE)
    tl.add_hits([_hit(tid, 0, 10.0), _hit(tid + 1, 0, 10.0)], now=0)
    tl.add_hits([_hit(tid + 1, 5, 15.0)], now=5)
    assert {o.track_id: len(o.hits) for o in tl.open} == {tid: 1, tid + 1: 2}


def test_a_better_hit_of_the_same_window_replaces_the_weaker(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    tl = Tracklist(store, NO_REFINE)
    first, better, worse = _hit(tid, 0, 10.0, 7.0), _hit(tid, 0, 10.2, 9.0), _hit(tid, 0, 10.1, 6.5)
    tl.add_hits([first], now=0)
    tl.add_hits([better], now=0)
    tl.add_hits([worse], now=0)
    (o,) = tl.open
    assert o.hits == [better]


def test_a_segment_closes_after_the_gap_tolerance(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    s = NO_REFINE
    tl = Tracklist(store, s)
    tl.add_hits([_hit(tid, 0, 5.0)], now=0)
    tl.add_hits([_hit(tid, 5, 10.0)], now=5)
    last_end = 15.0
    tl.add_hits([], now=last_end + s.max_gap_seconds)  # still inside the gap: open
    assert len(tl.open) == 1 and tl.done == []
    tl.add_hits([], now=last_end + s.max_gap_seconds + 0.1)
    assert tl.open == []
    assert [(d.track_id, d.windows) for d in tl.done] == [(tid, 2)]
    # A hit of the same alignment after the gap opens a new segment rather than reviving it.
    tl.add_hits([_hit(tid, 45, 50.0)], now=45)
    assert len(tl.open) == 1 and len(tl.open[0].hits) == 1


def test_a_segment_never_bridges_two_scanned_spans(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    tl = Tracklist(store, NO_REFINE, spans=[(20.0, None), (0.0, 20.0)])
    hits = [_hit(tid, w, w - 5.0 + 10.0) for w in (5, 10, 20, 25)]
    segs = _run(tl, hits)
    assert [(s.windows, s.start, s.end) for s in segs] == pytest.approx([(2, 5.0, 20.0), (2, 20.0, 35.0)])


def test_speed_carries_into_prediction_and_the_segment(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    hits = [_hit(tid, w, 5.0 + 1.04 * w, speed=1.04) for w in (0, 5)]
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.windows == 2
    assert seg.speed == pytest.approx(1.04)
    assert seg.ref_start == pytest.approx(5.0)
    assert seg.ref_end == pytest.approx(5.0 + 1.04 * 15.0)


def test_ends_near_the_reference_end_snap_to_it(store: Store, track: tuple[int, float]) -> None:
    tid, dur = track
    # The last window ends 1.5 s of reference before the track's end: the track played out.
    hits = [_hit(tid, w, dur - 16.5 + w) for w in (0, 5)]
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.end == pytest.approx(16.5)
    assert seg.ref_end == pytest.approx(dur)


def test_starts_near_the_reference_start_snap_to_it(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    hits = [_hit(tid, w, w - 9.0) for w in (10, 15)]  # reference 1.0 s at the first window
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.start == pytest.approx(9.0)
    assert seg.ref_start == 0.0


def test_a_segment_is_clamped_to_the_reference(store: Store, track: tuple[int, float]) -> None:
    tid, dur = track
    # Windows claim reference time before 0 and after the end: the segment is where the track plays.
    hits = [_hit(tid, w, w - 12.0) for w in (10, 15)]
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.start == pytest.approx(12.0)
    assert seg.ref_start == 0.0
    hits = [_hit(tid, w, dur - 2.0 + w) for w in (0, 5)]  # only 2 s of reference left
    (seg,) = _run(Tracklist(store, NO_REFINE), hits)
    assert seg.end == pytest.approx(2.0)
    assert seg.ref_end == pytest.approx(dur)
    hits = [_hit(tid, w, dur - 0.5 + w) for w in (0, 5)]  # under a second: dropped
    assert _run(Tracklist(store, NO_REFINE), hits) == []


# finish(): one track never plays twice at once ----------------------------------------------------


def _seg(track_id: int, start: float, end: float, windows: int, score: float = 10.0) -> TrackSegment:
    return TrackSegment(track_id, start, end, 0.0, end - start, 1.0, score, windows)


def test_finish_keeps_the_better_supported_of_overlapping_segments_of_one_track(store: Store) -> None:
    tl = Tracklist(store, NO_REFINE)
    main = _seg(1, 0.0, 60.0, 10)
    echo = _seg(1, 20.0, 50.0, 3, score=30.0)  # a repeated chorus: more confident, fewer windows
    later = _seg(1, 55.0, 100.0, 3)  # overlaps main by 5 s, under half of the shorter
    other = _seg(2, 0.0, 60.0, 2)  # another track at the same time (a mix): kept
    tl.done = [echo, later, other, main]
    assert tl.finish() == [main, other, later]


def test_finish_breaks_a_tie_in_windows_by_score(store: Store) -> None:
    tl = Tracklist(store, NO_REFINE)
    weak, strong = _seg(3, 0.0, 30.0, 4, score=10.0), _seg(3, 5.0, 35.0, 4, score=20.0)
    tl.done = [weak, strong]
    assert tl.finish() == [strong]


def test_finish_keeps_segments_overlapping_by_exactly_half(store: Store) -> None:
    tl = Tracklist(store, NO_REFINE)
    a, b = _seg(4, 0.0, 20.0, 5), _seg(4, 10.0, 30.0, 5)
    tl.done = [b, a]
    assert tl.finish() == [a, b]  # sorted by start


def test_finish_result_has_no_same_track_clash(store: Store) -> None:
    rng = np.random.default_rng(4)
    tl = Tracklist(store, NO_REFINE)
    starts = rng.uniform(0, 300, size=40)
    given = [
        _seg(int(rng.integers(1, 4)), s, s + rng.uniform(5, 60), int(rng.integers(1, 9)), rng.uniform(3, 40))
        for s in starts
    ]
    tl.done = list(given)
    out = tl.finish()
    assert out == sorted(out, key=lambda x: (x.start, x.end))

    def clash(a: TrackSegment, b: TrackSegment) -> bool:
        overlap = min(a.end, b.end) - max(a.start, b.start)
        return a.track_id == b.track_id and overlap > 0.5 * min(a.end - a.start, b.end - b.start)

    assert not any(clash(a, b) for a, b in combinations(out, 2))
    dropped = [g for g in given if g not in out]
    assert dropped  # the random draw does hold clashes
    # Every dropped segment clashed with a kept one at least as well supported.
    for d in dropped:
        assert any(clash(d, k) and (k.windows, k.score) >= (d.windows, d.score) for k in out)


def test_finish_closes_open_segments(store: Store, track: tuple[int, float]) -> None:
    tid, _ = track
    tl = Tracklist(store, NO_REFINE)
    tl.add_hits([_hit(tid, 0, 5.0)], now=0)
    tl.add_hits([_hit(tid, 5, 10.0)], now=5)
    assert tl.done == []
    (seg,) = tl.finish()
    assert tl.open == []
    assert seg.windows == 2


# alignment fit -------------------------------------------------------------------------------------


def test_fit_uses_the_grid_speed_for_few_or_close_windows() -> None:
    hits = [_hit(1, w, 3.0 + 1.03 * w, speed=1.02) for w in (0, 5)]
    speed, intercept = _fit_alignment(hits)
    assert speed == 1.02
    assert intercept == pytest.approx(np.median([w - (3.0 + 1.03 * w) / 1.02 for w in (0, 5)]))
    close = [_hit(1, w, 3.0 + 1.03 * w, speed=1.02) for w in (0, 5, 10)]  # 10 s < 15 s of spread
    assert _fit_alignment(close)[0] == 1.02


def test_fit_refines_the_speed_between_grid_steps() -> None:
    hits = [_hit(1, w, 1.025 * (w - 4.0), speed=1.02) for w in (4, 9, 14, 19, 24)]
    speed, intercept = _fit_alignment(hits)
    assert speed == pytest.approx(1.025)
    assert intercept == pytest.approx(4.0)  # ref = (t − intercept) · speed


def test_fit_rejects_a_slope_far_from_the_grid() -> None:
    hits = [_hit(1, w, 1.05 * w, speed=1.02) for w in (0, 5, 10, 15, 20)]
    assert _fit_alignment(hits)[0] == 1.02


# boundary refinement -------------------------------------------------------------------------------


def test_max_subarray_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    for _ in range(200):
        x = rng.normal(-0.2, 1.0, size=int(rng.integers(1, 30)))
        i, j = _max_subarray(x)
        best = max([0.0] + [x[a:b].sum() for a in range(len(x)) for b in range(a + 1, len(x) + 1)])
        assert 0 <= i <= j <= len(x)
        assert (x[i:j].sum() if j > i else 0.0) == pytest.approx(best)


def test_max_subarray_of_nothing_positive_is_empty() -> None:
    assert _max_subarray(np.array([-1.0, -0.5, -3.0])) == (0, 0)
    assert _max_subarray(np.zeros(0)) == (0, 0)
    assert _max_subarray(np.array([-1.0, 2.0, 3.0, -10.0, 4.0])) == (1, 3)


def test_dilated_codes_widen_a_peak_by_one_frame_and_bin() -> None:
    span = peak_code_span(FingerprintParams())
    codes = _dilated_codes(np.array([[10, 5]], dtype=np.int32), span)
    expected = sorted((10 + dt) * span + 5 + df for dt in (-1, 0, 1) for df in (-1, 0, 1))
    assert codes.tolist() == expected
    # At bin 0 the widening clips instead of wrapping into the previous frame's codes.
    edge = _dilated_codes(np.array([[10, 0]], dtype=np.int32), span)
    assert edge.tolist() == sorted((10 + dt) * span + b for dt in (-1, 0, 1) for b in (0, 1))


def _recording_with_track(store: Store, tid: int, at_frames: int, total_frames: int) -> np.ndarray:
    """Peaks of a recording that plays the track from frame ``at_frames`` over random background."""
    ref = store.index.track_peaks(tid).astype(np.int64)
    rng = np.random.default_rng(8)
    bins = int(ref[:, 1].max()) + 1
    bg_t = np.repeat(np.arange(total_frames), 3)
    bg = np.stack([bg_t, rng.integers(0, bins, size=len(bg_t))], axis=1)
    played = ref.copy()
    played[:, 0] += at_frames
    rec = np.concatenate([bg, played])
    return rec[np.argsort(rec[:, 0], kind="stable")].astype(np.int32)


def test_refine_finds_where_the_track_plays(store: Store, track: tuple[int, float]) -> None:
    tid, dur = track
    fs = store.params.frame_seconds
    at = 625  # 20.0 s
    tl = Tracklist(store, ScanSettings())
    tl.add_peaks(_recording_with_track(store, tid, at, int(80.0 / fs)))
    intercept = at * fs
    # The windows saw 25..55 s; the peaks show the track from 20 s to its end at 20 + dur s.
    refined = tl._refine(tid, 1.0, intercept, 25.0, 55.0)
    assert refined is not None
    assert refined[0] == pytest.approx(intercept, abs=1.5)
    assert refined[1] == pytest.approx(intercept + dur, abs=1.5)
    # At a wrong alignment the peaks stand at chance: nothing to refine.
    assert tl._refine(tid, 1.0, intercept + 7.3, 25.0, 55.0) is None
    # Too few recording peaks to decide.
    assert Tracklist(store, ScanSettings())._refine(tid, 1.0, intercept, 25.0, 55.0) is None


def test_refined_boundaries_reach_past_the_windows(store: Store, track: tuple[int, float]) -> None:
    tid, dur = track
    fs = store.params.frame_seconds
    at = 625
    rec = _recording_with_track(store, tid, at, int(80.0 / fs))
    hits = [_hit(tid, w, w - at * fs) for w in (25, 30, 35, 40, 45)]  # windows cover 25..55 s
    plain = Tracklist(store, dataclasses.replace(ScanSettings(), refine=False))
    refined = Tracklist(store, ScanSettings())
    for tl in (plain, refined):
        tl.add_peaks(rec)
    (p,) = _run(plain, hits)
    (r,) = _run(refined, hits)
    assert (p.start, p.end) == pytest.approx((25.0, 55.0))
    assert r.start == pytest.approx(at * fs, abs=1.5)
    assert r.end == pytest.approx(at * fs + dur, abs=1.5)
    assert r.ref_start == pytest.approx(0.0, abs=1.5)
    assert r.ref_end == pytest.approx(dur, abs=1.5)
