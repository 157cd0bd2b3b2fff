"""The upload-slot use case, called directly (the HTTP route is one thin caller of it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.stream import fingerprint_source
from soundmark.services.catalog import replace_upload_slot
from soundmark.services.recognition_pool import Extracted
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
