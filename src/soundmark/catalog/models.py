"""Catalog records."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

# Keys of TrackMeta.external that the API knows how to turn into provider blocks.
EXTERNAL_PROVIDERS = ("musicbrainz", "spotify", "apple_music", "deezer", "napster")


@dataclass(frozen=True)
class TrackMeta:
    """Descriptive metadata of a track, from tags, a manifest, or the API.

    ``external`` holds flat string keys such as ``musicbrainz_recording_id``,
    ``spotify_id``, ``spotify_url``, ``apple_music_id``, ``deezer_id``, or a provider's whole
    JSON object under its provider name (``spotify`` → '{"id": ...}').
    """

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    release_date: str | None = None  # YYYY-MM-DD, YYYY-MM or YYYY as the source gives it
    label: str | None = None
    isrc: str | None = None
    upc: str | None = None
    lyrics: str | None = None
    audio_id: int | None = None  # AudD custom-catalog id chosen by the uploader
    external: dict[str, str] = field(default_factory=dict)

    def merged(self, override: TrackMeta) -> TrackMeta:
        """This metadata with every non-empty field of ``override`` taking precedence."""
        changes: dict[str, object] = {}
        for f in fields(self):
            if f.name == "external":
                continue
            value = getattr(override, f.name)
            if value not in (None, ""):
                changes[f.name] = value
        changes["external"] = {**self.external, **{k: v for k, v in override.external.items() if v}}
        return replace(self, **changes)  # type: ignore[arg-type]  # values come from fields of the same type


@dataclass(frozen=True)
class Track:
    """A track as stored: its id, metadata and audio facts."""

    id: int
    meta: TrackMeta
    duration: float  # seconds of decoded audio
    source: str | None = None  # path or URL it was ingested from
    content_hash: str | None = None  # sha256 of the decoded-audio fingerprint input
    n_hashes: int = 0


@dataclass(frozen=True)
class SourceFile:
    """A file as ingest saw it: enough to know it again without decoding it."""

    path: str  # absolute, symlinks resolved
    size: int  # bytes
    mtime_ns: int
    sha256: str  # of the file's bytes
