"""Catalog use cases shared by the transports: the custom catalog's upload slots."""

from __future__ import annotations

from soundmark.catalog.models import TrackMeta
from soundmark.services.recognition_pool import Extracted
from soundmark.store import NewTrack, Store


def replace_upload_slot(store: Store, audio_id: int, ex: Extracted, source: str) -> int:
    """Put the fingerprinted audio ``ex`` under AudD's ``audio_id`` in one atomic commit,
    replacing what the slot held and keeping metadata set earlier for that id; returns the new
    track id (never a reused one). Blocking: run it off the event loop, under the writer lock."""
    with store.writer() as writer:
        old_id = writer.catalog.find_by_audio_id(audio_id)
        meta = TrackMeta(audio_id=audio_id)
        if old_id is not None:
            old = writer.catalog.get_track(old_id)
            if old is not None:
                meta = old.meta
        # content_hash None: the same recording may sit under two audio ids, as AudD allows.
        new = NewTrack(meta, ex.duration, source, None, ex.hashes, ex.times, ex.peaks)
        added = writer.commit([new], replacing=[old_id] if old_id is not None else [])
    return added[0]
