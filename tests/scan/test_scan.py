"""Long recordings: the streaming scan and its tracklist (match/scan.py)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from mixing import SR, Recording

from soundmark.match.scan import (
    ScanSettings,
    TrackSegment,
    chunk_spans,
    iter_chunks,
    open_scan_store,
    plan_windows,
    scan,
)
from soundmark.match.tracklist import Tracklist
from soundmark.store import Store


def _by_title(rec: Recording, segments: list[TrackSegment]) -> dict[str, list[TrackSegment]]:
    with open_scan_store(rec.db, (1.0,)) as store:
        tracks = store.catalog.get_tracks({s.track_id for s in segments})
    out: dict[str, list[TrackSegment]] = {}
    for s in segments:
        out.setdefault(tracks[s.track_id].meta.title or "", []).append(s)
    return out


@pytest.fixture(scope="module")
def scanned(recording: Recording) -> list[TrackSegment]:
    return scan(recording.path, recording.db).segments


def test_every_track_found_with_its_boundaries(recording: Recording, scanned: list[TrackSegment]) -> None:
    found = _by_title(recording, scanned)
    known = [p for p in recording.truth if p.known]
    assert len(known) == 32
    errors = []
    for p in known:
        segs = found.get(recording.titles[p.seed], [])
        assert len(segs) == 1, (p, segs)
        s = segs[0]
        assert abs(s.start - p.start) <= 2.0, (p, s)
        assert abs(s.end - p.end) <= 2.0, (p, s)
        assert abs(s.ref_start - p.ref_start) <= 2.5, (p, s)
        assert abs(s.speed - p.speed) <= 0.01, (p, s)
        errors += [abs(s.start - p.start), abs(s.end - p.end)]
    assert float(np.median(errors)) <= 1.0
    assert len(scanned) == len(known)  # nothing else reported


def test_unknown_stretches_report_nothing(recording: Recording, scanned: list[TrackSegment]) -> None:
    for p in recording.truth:
        if p.known:
            continue
        # Inside an unknown stretch (away from its cross-fades) no segment plays.
        a, b = p.start + 10.0, p.end - 10.0
        assert not [s for s in scanned if s.start < b and s.end > a], p


def test_crossfades_report_both_tracks(recording: Recording, scanned: list[TrackSegment]) -> None:
    overlaps = sum(1 for x, y in pairwise(scanned) if y.start < x.end - 2.0)
    assert overlaps >= 20


def test_speed_section_and_talk_over_found(recording: Recording, scanned: list[TrackSegment]) -> None:
    found = _by_title(recording, scanned)
    fast = next(p for p in recording.truth if p.speed == 1.04)
    assert found[recording.titles[fast.seed]][0].speed == pytest.approx(1.04, abs=0.005)
    talk = [p for p in recording.truth if p.talk_over and p.known]
    assert talk and all(len(found[recording.titles[p.seed]]) == 1 for p in talk)


def test_worker_processes_give_the_same_tracklist(recording: Recording, scanned: list[TrackSegment]) -> None:
    seen = []
    res = scan(recording.path, recording.db, workers=2, progress=lambda done, total: seen.append(done))
    assert [(s.track_id, round(s.start)) for s in res.segments] == [(s.track_id, round(s.start)) for s in scanned]
    assert seen == sorted(seen) and seen[-1] >= res.duration - 10
    assert res.realtime_factor > 20


def test_spans_restrict_the_analysis(recording: Recording) -> None:
    res = scan(recording.path, recording.db, spans=[(60.0, 120.0)])
    assert res.scanned == [(60.0, 120.0)]
    assert res.segments and all(s.start >= 60.0 - 1e-6 - 10 and s.end <= 120.0 + 10 for s in res.segments)


def test_chunk_spans_follow_audd_parameters() -> None:
    assert list(chunk_spans()) == [(0.0, None)]
    assert list(chunk_spans(skip_first=30)) == [(30.0, None)]
    assert list(chunk_spans(every=1, skip=4, limit=3)) == [(0.0, 12.0), (60.0, 72.0), (120.0, 132.0)]
    assert list(chunk_spans(every=2, skip=1, limit=3)) == [(0.0, 24.0), (36.0, 48.0)]
    assert list(chunk_spans(limit=2)) == [(0.0, 24.0)]


def test_chunk_spans_are_finite_for_every_combination() -> None:
    """A periodic plan without a limit (AudD's skip=1, every=1&skip=2) used to never end: it
    is bounded by the input's duration, and refused without one."""
    assert chunk_spans(skip=1, duration=60.0) == [(0.0, 12.0), (24.0, 36.0), (48.0, 60.0)]
    assert chunk_spans(every=1, skip=2, duration=90.0) == [(0.0, 12.0), (36.0, 48.0), (72.0, 84.0)]
    assert chunk_spans(every=2, skip=1, duration=40.0) == [(0.0, 24.0), (36.0, 40.0)]
    assert chunk_spans(skip_first=100.0, skip=1, duration=90.0) == []
    assert chunk_spans(duration=90.0) == [(0.0, 90.0)] and chunk_spans(skip_first=95.0, duration=90.0) == []
    assert chunk_spans(every=1, skip=2, limit=3, duration=50.0) == [(0.0, 12.0), (36.0, 48.0)]
    assert len(chunk_spans(skip=1, limit=0, duration=6 * 3600.0)) == 6 * 3600 // 24
    assert len(chunk_spans(every=1, skip=10**18, duration=1e9)) == 1
    with pytest.raises(ValueError):
        chunk_spans(skip=1)  # no limit, no duration: no finite plan
    with pytest.raises(ValueError):
        chunk_spans(skip_first=float("inf"), duration=60.0)


def test_windows_cover_short_spans() -> None:
    assert [w for w, _ in plan_windows([(0.0, 12.0)], 10.0, 5.0)] == [0.0, 2.0]
    assert [w for w, _ in plan_windows([(0.0, 6.0)], 10.0, 5.0)] == [0.0]


def test_chunks_hold_bounded_audio() -> None:
    """Streaming: however long the input, a chunk task holds about a chunk of samples."""
    s = ScanSettings(chunk_seconds=30.0)
    blocks = (np.zeros(10 * SR, dtype=np.float32) for _ in range(360))  # one hour in 10 s blocks
    sizes = [len(t.samples) for t in iter_chunks(blocks, plan_windows([(0.0, None)], 10.0, 5.0), SR, s)]
    assert len(sizes) == 120
    assert max(sizes) <= (30 + 10) * SR


def test_chunks_stay_on_the_input_clock_across_gaps() -> None:
    """Spans with gaps longer than a block (AudD's skip): every task's samples are the input's
    samples at the task's own position (the gap is read and discarded, not shifted in)."""
    s = ScanSettings(chunk_seconds=30.0)
    sr = 1000
    ramp = np.arange(90 * sr, dtype=np.float32)  # sample value = its position
    blocks = (ramp[i : i + 4 * sr] for i in range(0, len(ramp), 4 * sr))
    spans = [(0.0, 12.0), (36.0, 48.0), (72.0, 84.0)]
    tasks = list(iter_chunks(blocks, plan_windows(spans, 10.0, 5.0), sr, s, frame_hop=8))
    assert [t.windows[0][0] for t in tasks] == [0, 36 * sr, 72 * sr]
    for t in tasks:
        assert t.samples[0] == t.start_sample and t.samples[-1] == t.start_sample + len(t.samples) - 1


def test_finish_clips_to_the_duration_and_drops_what_starts_past_it(store: Store) -> None:
    tl = Tracklist(store, ScanSettings())
    inside = TrackSegment(1, 10.0, 50.0, 0.0, 40.0, 1.0, 20.0, 8)
    past = TrackSegment(2, 72.0, 90.0, 5.0, 23.0, 1.0, 12.0, 4)
    tl.done = [inside, past]
    segments = tl.finish(duration=60.03)
    assert [(s.track_id, s.start, s.end) for s in segments] == [(1, 10.0, 50.0)]
    assert all(s.end > s.start for s in segments)
