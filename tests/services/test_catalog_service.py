"""The catalog use cases, called directly (the HTTP route and the CLI are thin callers of them):
upload slots, metadata edits, removal, adding files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.stream import fingerprint_source
from soundmark.services.catalog import (
    MetaEdit,
    Removal,
    TrackRef,
    add_files,
    edit_metadata,
    items_to_add,
    remove_tracks,
    replace_upload_slot,
)
from soundmark.services.errors import ServiceError
from soundmark.services.recognition_pool import Extracted
from soundmark.settings import Settings
from soundmark.store import Store
from support import Piece


def _extracted(path: Path) -> Extracted:
    fp, seconds = fingerprint_source(path, FingerprintParams(), 3600)
    return Extracted(seconds, fp.hashes, fp.times, fp.peaks)


def test_a_slot_is_replaced_atomically_with_a_new_id_and_its_metadata_kept(
    store_copy: Path, pieces: list[Piece]
) -> None:
    with Store(store_copy, FingerprintParams()) as store:
        before = {t.id for t in store.catalog.list_tracks()}
        first = replace_upload_slot(store, 146, _extracted(pieces[0].path), "upload")
        with store.writer() as writer:
            track = writer.catalog.get_track(first)
            assert track is not None
            writer.update_meta(first, dataclasses.replace(track.meta, title="Named Later"))
        second = replace_upload_slot(store, 146, _extracted(pieces[1].path), "upload")
        store.refresh()
        slot = [t for t in store.catalog.list_tracks() if t.meta.audio_id == 146]
        assert [t.id for t in slot] == [second]  # one track in the slot
        assert second > first > max(before)  # ids are never reused
        assert slot[0].meta.title == "Named Later"  # metadata set for the id is kept
        assert store.catalog.get_track(first) is None


def test_metadata_is_edited_by_audio_id_or_track_id_and_externals_removed(store_copy: Path) -> None:
    with Store(store_copy, FingerprintParams()) as store:
        track = store.catalog.list_tracks()[0]
        edited = edit_metadata(
            store, TrackRef(track_id=track.id), MetaEdit(title="New Title", external={"spotify_id": "abc"})
        )
        assert edited.meta.title == "New Title" and edited.meta.external["spotify_id"] == "abc"
        assert edited.meta.artist == track.meta.artist  # fields not given stay
        edited = edit_metadata(store, TrackRef(track_id=track.id), MetaEdit(external={"spotify_id": ""}))
        assert "spotify_id" not in edited.meta.external
        stored = store.catalog.get_track(track.id)
        assert stored is not None and stored.meta == edited.meta
        with pytest.raises(ServiceError) as missing:
            edit_metadata(store, TrackRef(audio_id=424242), MetaEdit(title="x"))
        assert missing.value.code == 50
    with pytest.raises(ValueError):
        TrackRef(track_id=1, audio_id=2)


def test_tracks_are_removed_and_unknown_ids_reported(store_copy: Path) -> None:
    with Store(store_copy, FingerprintParams()) as store:
        ids = [t.id for t in store.catalog.list_tracks()]
        removal = remove_tracks(store, [ids[0], 999_999])
        assert removal == Removal(removed=(ids[0],), missing=(999_999,))
        store.refresh()
        assert [t.id for t in store.catalog.list_tracks()] == ids[1:]


def test_files_are_added_and_a_bad_manifest_refused(tmp_path: Path, pieces: list[Piece]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("no,header,we,know\n")
    with pytest.raises(ServiceError) as refused:
        items_to_add([], bad)
    assert refused.value.code == 50
    with Store(tmp_path / "db", FingerprintParams(), create=True) as store:
        items = items_to_add([pieces[0].path, pieces[1].path])
        report = add_files(store, items, Settings(db=tmp_path / "db", ingest_processes=1))
        again = add_files(store, items_to_add([pieces[0].path]), Settings(db=tmp_path / "db", ingest_processes=1))
        assert len(report.added) == 2 and not report.failures
        assert len(again.added) == 0 and len(again.known) == 1  # the same file is not added twice
        assert len(store.catalog.list_tracks()) == 2
