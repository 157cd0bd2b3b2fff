"""Read a track's descriptive metadata from its embedded tags.

Why: most reference audio arrives already tagged (often by MusicBrainz Picard), and those tags
are the cheapest source of the title, artist, ISRC and MusicBrainz ids that the API reports.
Each tag family spells the same field differently, so each is first flattened to upper-cased
keys (``TIT2``, ``TXXX:BARCODE``, ``MUSICBRAINZ_TRACKID``, ``----:COM.APPLE.ITUNES:ISRC``) and
then looked up through a per-family table that follows Picard's tag mapping
(https://picard-docs.musicbrainz.org/en/latest/appendices/tag_mapping.html). Note that
Picard's ``musicbrainz_trackid`` is the *recording* id.

Tags are a convenience, never a requirement: a file without tags, with tags of another family,
or that mutagen cannot parse at all yields an empty :class:`TrackMeta` instead of an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from os import PathLike

import mutagen
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags
from mutagen.ogg import OggFileType

from soundmark.catalog.models import TrackMeta

_MB = "----:COM.APPLE.ITUNES:"

# TrackMeta field or external key -> flattened tag keys, most preferred first.
_ID3_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("TIT2",),
    "artist": ("TPE1",),
    "album": ("TALB",),
    "release_date": ("TDRC", "TYER"),  # mutagen upgrades ID3v2.3 TYER+TDAT to TDRC on load
    "label": ("TPUB", "TXXX:LABEL"),
    "isrc": ("TSRC", "TXXX:ISRC"),
    "upc": ("TXXX:BARCODE", "TXXX:UPC"),
    "lyrics": ("USLT",),
    "musicbrainz_recording_id": ("UFID:HTTP://MUSICBRAINZ.ORG", "TXXX:MUSICBRAINZ TRACK ID"),
    "musicbrainz_release_id": ("TXXX:MUSICBRAINZ ALBUM ID",),
    "musicbrainz_artist_id": ("TXXX:MUSICBRAINZ ARTIST ID",),
    "musicbrainz_releasegroup_id": ("TXXX:MUSICBRAINZ RELEASE GROUP ID",),
}

_VORBIS_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("TITLE",),
    "artist": ("ARTIST",),
    "album": ("ALBUM",),
    "release_date": ("DATE", "YEAR"),
    "label": ("LABEL", "ORGANIZATION", "PUBLISHER"),
    "isrc": ("ISRC",),
    "upc": ("BARCODE", "UPC"),
    "lyrics": ("LYRICS", "UNSYNCEDLYRICS"),
    "musicbrainz_recording_id": ("MUSICBRAINZ_TRACKID",),
    "musicbrainz_release_id": ("MUSICBRAINZ_ALBUMID",),
    "musicbrainz_artist_id": ("MUSICBRAINZ_ARTISTID",),
    "musicbrainz_releasegroup_id": ("MUSICBRAINZ_RELEASEGROUPID",),
}

_MP4_KEYS: dict[str, tuple[str, ...]] = {
    "title": ("©NAM",),
    "artist": ("©ART",),
    "album": ("©ALB",),
    "release_date": ("©DAY",),
    "label": (_MB + "LABEL",),
    "isrc": (_MB + "ISRC",),
    "upc": (_MB + "BARCODE", _MB + "UPC"),
    "lyrics": ("©LYR",),
    "musicbrainz_recording_id": (_MB + "MUSICBRAINZ TRACK ID",),
    "musicbrainz_release_id": (_MB + "MUSICBRAINZ ALBUM ID",),
    "musicbrainz_artist_id": (_MB + "MUSICBRAINZ ARTIST ID",),
    "musicbrainz_releasegroup_id": (_MB + "MUSICBRAINZ RELEASE GROUP ID",),
}

_META_FIELDS = ("title", "artist", "album", "release_date", "label", "isrc", "upc", "lyrics")
_ID_SEP = re.compile(r"[/;]")
_DATE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2})?)?")


def read_tags(path: str | PathLike[str]) -> TrackMeta:
    """The metadata embedded in the audio file at ``path``; an empty TrackMeta if there is none."""
    try:
        audio = mutagen.File(path)
        tags = None if audio is None else audio.tags
        if isinstance(tags, ID3):  # MP3, and ID3 chunks in WAV/AIFF
            return _build(_flatten_id3(tags), _ID3_KEYS)
        if isinstance(tags, MP4Tags):
            return _build(_flatten_mp4(tags), _MP4_KEYS)
        if tags is not None and isinstance(audio, FLAC | OggFileType):  # Vorbis comments
            return _build(_flatten_vorbis(tags), _VORBIS_KEYS)
    except (mutagen.MutagenError, OSError, ValueError):
        pass
    return TrackMeta()


def _flatten_id3(tags: ID3) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for frame in tags.values():
        fid = frame.FrameID
        if fid == "TXXX":
            key, values = f"TXXX:{frame.desc.upper()}", [str(t) for t in frame.text]
        elif fid == "UFID":
            key, values = f"UFID:{frame.owner.upper()}", [frame.data.decode("utf-8", "replace")]
        elif fid == "USLT":
            key, values = fid, [frame.text]
        elif fid.startswith("T") and hasattr(frame, "text"):
            key, values = fid, [str(t) for t in frame.text]
        else:
            continue
        flat.setdefault(key, []).extend(values)
    return flat


def _flatten_vorbis(tags: list[tuple[str, str]]) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for key, value in tags:
        flat.setdefault(key.upper(), []).append(value)
    return flat


def _flatten_mp4(tags: MP4Tags) -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    for key, values in tags.items():
        if key.startswith("----:"):
            texts = [bytes(v).decode("utf-8", "replace") for v in values]
        else:
            texts = [v for v in values if isinstance(v, str)]
        flat.setdefault(key.upper(), []).extend(texts)
    return flat


def _first(flat: Mapping[str, list[str]], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        for value in flat.get(key, ()):
            value = value.strip("\x00").strip()
            if value:
                return value
    return None


def _build(flat: Mapping[str, list[str]], table: Mapping[str, tuple[str, ...]]) -> TrackMeta:
    values = {name: _first(flat, keys) for name, keys in table.items()}
    date = values["release_date"]
    if date is not None:
        match = _DATE.match(date)  # keep YYYY[-MM[-DD]] as written, drop any time part
        values["release_date"] = match.group(0) if match else None
    external = {}
    for key, value in values.items():
        if key not in _META_FIELDS and value is not None:
            # Multiple ids (one per artist) are joined with "/" in ID3v2.3; keep the first.
            external[key] = _ID_SEP.split(value, maxsplit=1)[0].strip()
    return TrackMeta(**{k: values[k] for k in _META_FIELDS}, external=external)  # type: ignore[arg-type]
