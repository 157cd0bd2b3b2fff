"""A scan's timeline picture: tracks as bars over the recording, cross-fades shaded."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from matplotlib.image import imread

from soundmark.demo import write_wav
from soundmark.match.scan import ScanResult, scan
from soundmark.match.tracklist import TrackSegment
from soundmark.render.figure import figure_bytes
from soundmark.render.timeline import lanes, overlaps, timeline_figure
from soundmark.store import Store
from support import PIECE_RATE, Piece

FADE = 6.0  # seconds of cross-fade between the two pieces


def _mix(a: np.ndarray, b: np.ndarray, fade: float, sr: int) -> np.ndarray:
    n = int(fade * sr)
    out = np.zeros(len(a) + len(b) - n, dtype=np.float32)
    out[: len(a)] += a * np.concatenate([np.ones(len(a) - n), np.cos(np.linspace(0, np.pi / 2, n))])
    out[len(a) - n :] += b * np.concatenate([np.sin(np.linspace(0, np.pi / 2, n)), np.ones(len(b) - n)])
    return out


def _ids(svg: bytes) -> list[str]:
    return [el.attrib["id"] for el in ET.fromstring(svg).iter() if "id" in el.attrib]


def test_two_track_mix_draws_two_bars_and_their_crossfade(
    built_store: Path, store: Store, pieces: list[Piece], tmp_path: Path
) -> None:
    path = tmp_path / "mix.wav"
    write_wav(path, _mix(pieces[0].samples, pieces[3].samples, FADE, PIECE_RATE), PIECE_RATE)
    result = scan(path, built_store)
    tracks = store.catalog.get_tracks({s.track_id for s in result.segments})
    names = {i: t.meta.title or "" for i, t in tracks.items()}
    assert [names[s.track_id] for s in result.segments] == [pieces[0].title, pieces[3].title]
    a, b = result.segments
    assert b.start < a.end  # the scan saw both tracks during the fade

    svg = figure_bytes(timeline_figure(result, names), "svg")
    ids = _ids(svg)
    assert sorted(i for i in ids if i.startswith("segment-")) == ["segment-0", "segment-1"]
    assert "overlap-0" in ids and "scanned" in ids
    assert lanes(sorted(result.segments, key=lambda s: s.start)) == [0, 1]

    img = imread(io.BytesIO(figure_bytes(timeline_figure(result, names), "png")), format="png")
    assert img.shape[0] > 150 and img.shape[1] > 1000 and img[..., :3].std() > 0.05


def _seg(track_id: int, start: float, end: float) -> TrackSegment:
    return TrackSegment(track_id, start, end, 0.0, end - start, 1.0, 20.0, 3)


def test_lanes_alternate_only_where_tracks_overlap() -> None:
    segs = [_seg(1, 0, 100), _seg(2, 95, 200), _seg(3, 200, 300), _seg(4, 290, 400), _seg(5, 350, 360)]
    assert lanes(segs) == [0, 1, 0, 1, 0]
    assert overlaps(segs) == [(95, 100), (290, 300), (350, 360)]
    result = ScanResult(segs, duration=420.0, scanned=[(0.0, 420.0)], wall_seconds=1.0, windows=80)
    ids = _ids(figure_bytes(timeline_figure(result, {1: "One"}), "svg"))  # unnamed tracks: "track N"
    assert [i for i in ids if i.startswith("segment-")] == [f"segment-{k}" for k in range(5)]
    assert [i for i in ids if i.startswith("overlap-")] == ["overlap-0", "overlap-1", "overlap-2"]


def test_an_empty_scan_still_draws_its_axis() -> None:
    result = ScanResult([], duration=60.0, scanned=[(0.0, 60.0)], wall_seconds=0.5, windows=11)
    ids = _ids(figure_bytes(timeline_figure(result, {}), "svg"))
    assert "scanned" in ids and not [i for i in ids if i.startswith("segment-")]
