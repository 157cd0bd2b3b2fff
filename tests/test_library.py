"""The Python API (``soundmark.open``): add, recognise from a path, bytes or an array, scan, list, remove."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

import soundmark
from soundmark.demo import write_wav
from soundmark.errors import TooShortError
from support import PIECE_RATE, Piece


def _wav_bytes(x: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


@pytest.fixture()
def library(tmp_path: Path, pieces: list[Piece]) -> soundmark.Soundmark:
    sm = soundmark.open(tmp_path / "db")
    report = sm.add([p.path for p in pieces[:3]])
    assert len(report.added) == 3
    yield sm
    sm.close()


def test_recognize_a_path_bytes_and_an_array(library: soundmark.Soundmark, pieces: list[Piece], tmp_path: Path) -> None:
    piece = pieces[1]
    start = 12 * PIECE_RATE
    clip = piece.samples[start : start + 8 * PIECE_RATE]
    path = tmp_path / "clip.wav"
    write_wav(path, clip, PIECE_RATE)
    stereo = np.stack([clip, clip], axis=1)
    for audio, rate in ((path, None), (str(path), None), (_wav_bytes(clip, PIECE_RATE), None), (stereo, PIECE_RATE)):
        match = library.recognize(audio, sample_rate=rate)
        assert match is not None, type(audio)
        assert match.track.source is not None and Path(match.track.source).name == piece.path.name
        assert abs(match.offset_seconds - 12.0) < 0.5
        assert match.timecode == "00:12"
        assert match.score > 3 and abs(match.time_rate - 1.0) < 0.01


def test_metadata_given_for_one_file_overrides_the_tags(tmp_path: Path, pieces: list[Piece]) -> None:
    with soundmark.open(tmp_path / "db") as sm:
        sm.add(pieces[0].path, metadata=soundmark.TrackMeta(title="Given Title", artist="Given Artist"))
        match = sm.recognize(pieces[0].samples[5 * PIECE_RATE : 13 * PIECE_RATE], sample_rate=PIECE_RATE)
        assert match is not None
        assert (match.title, match.artist) == ("Given Title", "Given Artist")
        with pytest.raises(ValueError, match="single file"):
            sm.add(tmp_path, metadata=soundmark.TrackMeta(title="x"))


def test_unknown_audio_is_none_and_short_audio_is_an_error(
    library: soundmark.Soundmark, unknown_piece: np.ndarray
) -> None:
    assert library.recognize(unknown_piece[: 8 * PIECE_RATE], sample_rate=PIECE_RATE) is None
    with pytest.raises(TooShortError):
        library.recognize(unknown_piece[: PIECE_RATE // 2], sample_rate=PIECE_RATE)
    with pytest.raises(ValueError, match="sample_rate"):
        library.recognize(unknown_piece)


def test_tracks_remove_and_add_again_reports_duplicates(library: soundmark.Soundmark, pieces: list[Piece]) -> None:
    listed = library.tracks()
    assert len(listed) == 3
    again = library.add(pieces[0].path)
    assert not again.added and (again.known or again.duplicates)
    removal = library.remove(listed[0].id, 999_999)
    assert removal.removed == (listed[0].id,) and removal.missing == (999_999,)
    assert [t.id for t in library.tracks()] == [t.id for t in listed[1:]]
    assert library.track(listed[0].id) is None
    gone = pieces[[p.path.name for p in pieces].index(Path(listed[0].source or "").name)]
    assert library.recognize(gone.samples[10 * PIECE_RATE : 18 * PIECE_RATE], sample_rate=PIECE_RATE) is None


def test_scan_a_long_recording(library: soundmark.Soundmark, pieces: list[Piece], tmp_path: Path) -> None:
    mix = np.concatenate([pieces[0].samples[: 30 * PIECE_RATE], pieces[2].samples[: 30 * PIECE_RATE]])
    path = tmp_path / "mix.wav"
    write_wav(path, mix, PIECE_RATE)
    result = library.scan(path)
    ids = {t.id: Path(t.source or "").name for t in library.tracks()}
    named = [ids.get(seg.track_id) for seg in result.segments]
    assert named == [pieces[0].path.name, pieces[2].path.name]
    assert result.duration == pytest.approx(60.0, abs=0.1)
