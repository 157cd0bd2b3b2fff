"""Duplicate detection at ingest: a new track is matched against the index on its own hashes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from soundmark.catalog.models import TrackMeta
from soundmark.demo import write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, extract
from soundmark.match.dedupe import MIN_SHARED, find_duplicate
from soundmark.store import NewTrack, Store
from support import PIECE_RATE, Piece

PARAMS = FingerprintParams()


def _new_track(path: Path) -> NewTrack:
    return extract(IngestItem(path, TrackMeta()), PARAMS, 3600)


def _stored_id(store: Store, piece: Piece) -> int:
    row = store.catalog.conn.execute("SELECT id FROM tracks WHERE source=?", (str(piece.path),)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def tracks(pieces: list[Piece]) -> dict[int, NewTrack]:
    """Every catalog piece fingerprinted again, as a re-add of the file would."""
    return {p.seed: _new_track(p.path) for p in pieces[:3]}


def test_a_re_added_track_is_found(store: Store, pieces: list[Piece], tracks: dict[int, NewTrack]) -> None:
    for piece in pieces[:3]:
        assert find_duplicate(store, tracks[piece.seed]) == _stored_id(store, piece)


def test_a_re_encode_with_other_tags_and_no_content_hash_is_still_found(
    store: Store, pieces: list[Piece], tracks: dict[int, NewTrack]
) -> None:
    track = replace(tracks[pieces[1].seed], meta=TrackMeta(title="another name"), content_hash=None, source=None)
    assert find_duplicate(store, track) == _stored_id(store, pieces[1])


def test_unknown_audio_is_no_duplicate(store: Store, unknown_piece: np.ndarray, tmp_path: Path) -> None:
    path = tmp_path / "unknown.wav"
    write_wav(path, unknown_piece, PIECE_RATE)
    track = _new_track(path)
    assert len(track.hashes) > 100
    assert find_duplicate(store, track) is None


def test_same_audio_of_a_different_length_is_no_duplicate(
    store: Store, pieces: list[Piece], tracks: dict[int, NewTrack]
) -> None:
    track = tracks[pieces[0].seed]
    # A tolerance of max(2 s, 2 %) on the duration: an edit or a longer mix is a new track.
    assert find_duplicate(store, replace(track, duration=track.duration + 1.5)) == _stored_id(store, pieces[0])
    assert find_duplicate(store, replace(track, duration=track.duration + 10.0)) is None
    assert find_duplicate(store, replace(track, duration=track.duration / 2)) is None


def test_too_few_hashes_in_the_window_decide_nothing(
    store: Store, pieces: list[Piece], tracks: dict[int, NewTrack]
) -> None:
    track = tracks[pieces[0].seed]
    short = replace(track, hashes=track.hashes[:19], times=track.times[:19])
    assert find_duplicate(store, short) is None
    empty = replace(track, hashes=track.hashes[:0], times=track.times[:0])
    assert find_duplicate(store, empty) is None


def test_hashes_shared_at_no_consistent_offset_are_no_duplicate(
    store: Store, pieces: list[Piece], tracks: dict[int, NewTrack]
) -> None:
    track = tracks[pieces[0].seed]
    # The same hashes with their times shuffled: they still hit the stored track, but no offset
    # gathers MIN_SHARED of them.
    rng = np.random.default_rng(0)
    shuffled = replace(track, times=rng.permutation(track.times))
    assert MIN_SHARED > 0
    assert find_duplicate(store, shuffled) is None


def test_an_empty_store_holds_no_duplicate(tmp_path: Path, tracks: dict[int, NewTrack]) -> None:
    with Store(tmp_path / "db", PARAMS, create=True) as empty:
        assert find_duplicate(empty, next(iter(tracks.values()))) is None


def test_a_copy_is_found_within_a_posting_budget_that_leaves_hashes_out(
    built_store: Path, pieces: list[Piece], tracks: dict[int, NewTrack], unknown_piece: np.ndarray, tmp_path: Path
) -> None:
    # 1.2 postings per hash: only the rarest hashes are read, as in a catalog of millions.
    tight = replace(PARAMS, query_postings_per_hash_retry=1.2)
    with Store(built_store, tight) as store:
        track = tracks[pieces[2].seed]
        unique = np.unique(track.hashes)
        hits = store.index.lookup(unique, tight.max_postings_per_hash, int(1.2 * len(unique)))
        assert len(unique) // 10 < hits.budget_dropped < len(unique) // 2  # the budget binds, some are read
        assert find_duplicate(store, track) == _stored_id(store, pieces[2])
        path = tmp_path / "unknown.wav"
        write_wav(path, unknown_piece, PIECE_RATE)
        assert find_duplicate(store, _new_track(path)) is None
