"""The same recording stored under several ids (AudD lets one file be uploaded as several
audio_ids): the copies must not serve as each other's chance level."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from soundmark.catalog.models import TrackMeta
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, extract
from soundmark.match.recognizer import Recognizer
from soundmark.match.verify import SAME_AUDIO_SHARE, shared_peaks
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample

PARAMS = FingerprintParams()


def _excerpt(piece: Piece, start: float, seconds: float) -> np.ndarray:
    a = int(start * PIECE_RATE)
    return resample(piece.samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE, PARAMS.sample_rate)


def _add_copies(db: Path, piece: Piece, n: int) -> tuple[int, list[int]]:
    """``n`` more tracks holding exactly ``piece``'s audio, as uploads under new audio ids store them."""
    with Store(db, PARAMS) as store:
        row = store.catalog.conn.execute("SELECT id FROM tracks WHERE source=?", (str(piece.path),)).fetchone()
        track = extract(IngestItem(piece.path, TrackMeta()), PARAMS, 3600)
        uploads = [
            replace(track, meta=TrackMeta(title=f"upload {k}", audio_id=100 + k), content_hash=None) for k in range(n)
        ]
        with store.writer() as w:
            return int(row[0]), w.commit(uploads)


@pytest.mark.parametrize("start", [4.0, 21.0])
def test_identical_copies_do_not_cancel_each_other(store_copy: Path, pieces: list[Piece], start: float) -> None:
    original, copies = _add_copies(store_copy, pieces[2], 3)
    with Store(store_copy, PARAMS) as store:
        matches = Recognizer(store).recognize(_excerpt(pieces[2], start, 8.0))
    assert matches, "the recording went unrecognised because its copies raised the chance level"
    ids = [m.track.id for m in matches]
    assert ids[0] == original  # the best (ties go to the first stored) ...
    assert set(ids[1:]) == set(copies)  # ... and the copies as alternatives
    assert all(abs(m.offset_seconds - start) < 0.5 for m in matches)


def test_copies_leave_unknown_audio_unknown(store_copy: Path, pieces: list[Piece], unknown_piece: np.ndarray) -> None:
    _add_copies(store_copy, pieces[2], 3)
    unknown = Piece(0, Path("unknown"), unknown_piece, "unknown")
    with Store(store_copy, PARAMS) as store:
        for start in (0.0, 12.0, 25.0):
            assert Recognizer(store).recognize(_excerpt(unknown, start, 8.0)) == []


def test_shared_peaks_tells_copies_from_other_recordings(store: Store, pieces: list[Piece]) -> None:
    def peaks(p: Piece) -> np.ndarray:
        row = store.catalog.conn.execute("SELECT id FROM tracks WHERE source=?", (str(p.path),)).fetchone()
        return store.index.track_peaks(int(row[0]))

    span = int(8.0 / PARAMS.frame_seconds)
    a = peaks(pieces[0])
    assert shared_peaks(a, 300, a, 300, span) == 1.0
    assert shared_peaks(a, 300, a, 340, span) < 0.2  # the same recording, another place
    for other in pieces[1:]:
        assert shared_peaks(a, 300, peaks(other), 300, span) < SAME_AUDIO_SHARE / 3
