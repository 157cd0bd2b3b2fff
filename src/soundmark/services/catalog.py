"""Catalog use cases shared by the transports: adding audio files (``soundmark add``), the custom
catalog's upload slots (AudD's ``upload``), editing a track's metadata (``soundmark meta``; AudD
has no API method for it, so none is served) and removing tracks.

Every function blocks (decoding, SQLite, fsync): run it off the event loop. A refused request
raises ``ServiceError`` (AudD's code 50 for a track that is not there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from soundmark.catalog.manifest import ManifestError, read_manifest
from soundmark.catalog.models import Track, TrackMeta
from soundmark.ingest import IngestItem, IngestReport, collect_items, ingest, items_from_manifest
from soundmark.services.errors import ServiceError
from soundmark.services.recognition_pool import Extracted
from soundmark.settings import Settings
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


# --- adding audio files ---------------------------------------------------------------------------
def items_to_add(paths: Iterable[Path], manifest: Path | None = None) -> list[IngestItem]:
    """What ``add`` ingests: audio files under ``paths`` (folders searched recursively) and the
    rows of a CSV ``manifest``; a malformed manifest is ServiceError 50."""
    items = collect_items(paths)
    if manifest is not None:
        try:
            items += items_from_manifest(read_manifest(manifest))
        except ManifestError as exc:
            raise ServiceError(50, str(exc)) from exc
    return items


def add_files(
    store: Store, items: list[IngestItem], settings: Settings, progress: Callable[[IngestItem, str], None] | None = None
) -> IngestReport:
    """Fingerprint ``items`` in parallel and commit them in atomic batches (duplicates and files
    already stored are reported, not added); the settings give the workers, batch size and the
    longest track accepted."""
    return ingest(
        store, items, processes=settings.ingest_processes, batch_tracks=settings.batch_tracks,
        max_seconds=settings.max_track_hours * 3600, progress=progress,
    )  # fmt: skip


# --- metadata ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackRef:
    """A track named by soundmark's id or by its AudD custom-catalog ``audio_id`` (exactly one)."""

    track_id: int | None = None
    audio_id: int | None = None

    def __post_init__(self) -> None:
        if (self.track_id is None) == (self.audio_id is None):
            raise ValueError("name the track with exactly one of track_id or audio_id")


@dataclass(frozen=True)
class MetaEdit:
    """Fields to change (None: keep); in ``external`` an empty value removes the key."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    isrc: str | None = None
    upc: str | None = None
    lyrics: str | None = None
    external: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.external and all(getattr(self, f) is None for f in _PLAIN_FIELDS)


_PLAIN_FIELDS = ("title", "artist", "album", "release_date", "label", "isrc", "upc", "lyrics")


def find_track(store: Store, ref: TrackRef) -> Track:
    tid = ref.track_id if ref.track_id is not None else store.catalog.find_by_audio_id(int(ref.audio_id or 0))
    track = store.catalog.get_track(tid) if tid is not None else None
    if track is None:
        raise ServiceError(50, "no such track")
    return track


def edit_metadata(store: Store, ref: TrackRef, edit: MetaEdit) -> Track:
    """The track with ``edit`` applied (committed when it changes anything); others keep theirs."""
    track = find_track(store, ref)
    if edit.empty:
        return track
    changes: dict[str, object] = {f: getattr(edit, f) for f in _PLAIN_FIELDS if getattr(edit, f) is not None}
    if edit.external:
        ext = dict(track.meta.external)
        for key, value in edit.external.items():
            if value:
                ext[key] = value
            else:
                ext.pop(key, None)
        changes["external"] = ext
    meta = dataclasses.replace(track.meta, **changes)  # type: ignore[arg-type]
    with store.writer() as writer:
        writer.update_meta(track.id, meta)
    return dataclasses.replace(track, meta=meta)


# --- removal ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Removal:
    removed: tuple[int, ...]
    missing: tuple[int, ...]  # ids that named no track


def remove_tracks(store: Store, track_ids: Iterable[int]) -> Removal:
    """Delete tracks and their fingerprints: hidden at once, their bytes reclaimed when the
    index's merge policy rewrites what the removals hollowed out (not the whole index: one
    removal in a big catalog must not rewrite every segment; ``Store.compact`` rewrites it all)."""
    removed: list[int] = []
    missing: list[int] = []
    with store.writer() as writer:
        for tid in track_ids:
            (removed if writer.remove(tid) else missing).append(tid)
        writer.merge_by_policy()
    return Removal(tuple(removed), tuple(missing))
