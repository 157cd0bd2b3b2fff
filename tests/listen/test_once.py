"""One-shot listening: a match counts once the next answer confirms it (tests with a real store and
the real local ear, fed from an array instead of a device)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

import soundmark
from soundmark.catalog.models import Track, TrackMeta
from soundmark.listen.local import LocalEar
from soundmark.listen.session import Heard, confirmed, listen_once
from soundmark.match.recognizer import Match, MatchSettings
from support import PIECE_RATE, Piece


class CountingEar(LocalEar):
    asks = 0

    def heard(self) -> Heard:
        self.asks += 1
        return super().heard()


def _blocks(x: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for i in range(0, len(x), size):
        yield x[i : i + size]


@pytest.fixture()
def library(tmp_path: Path, pieces: list[Piece]) -> Iterator[soundmark.Soundmark]:
    with soundmark.open(tmp_path / "db") as sm:
        assert len(sm.add([p.path for p in pieces[:3]]).added) == 3
        yield sm


def test_a_catalog_clip_is_named_once_a_second_answer_confirms_it(
    library: soundmark.Soundmark, pieces: list[Piece]
) -> None:
    store = library.store
    rate = store.params.sample_rate
    clip = pieces[1].samples[10 * PIECE_RATE : 30 * PIECE_RATE]
    clip = resample_poly(clip, rate, PIECE_RATE).astype(np.float32) if rate != PIECE_RATE else clip
    ear = CountingEar(store, MatchSettings(), window_seconds=8.0)
    heard = listen_once(_blocks(clip, rate // 10), ear, seconds=20.0)
    assert heard.matches and heard.matches[0].track.meta.title == pieces[1].path.stem
    assert ear.asks >= 2  # the first match was confirmed by the next answer, not taken alone
    fed = 1.0 + ear.asks  # asked after 2 s, then every second
    assert heard.matches[0].offset_seconds == pytest.approx(10 + fed - heard.seconds, abs=1.0)


def _match(track_id: int, offset: float) -> Match:
    return Match(Track(track_id, TrackMeta(title=f"t{track_id}"), 60.0), offset, 10.0, 20, 1.0, 1.0)


def test_confirmation_needs_the_same_track_at_an_offset_that_moved_with_the_audio() -> None:
    first = Heard([_match(7, 30.0)], 4.0)
    assert confirmed(first, 0.0, Heard([_match(7, 31.0)], 4.0), 1.0)
    assert confirmed(first, 0.0, Heard([_match(7, 32.2)], 4.0), 1.0)  # within the slack
    assert not confirmed(first, 0.0, Heard([_match(7, 45.0)], 4.0), 1.0)  # the same track elsewhere: chance
    assert not confirmed(first, 0.0, Heard([_match(8, 31.0)], 4.0), 1.0)  # another track
