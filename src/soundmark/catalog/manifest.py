"""Read a CSV manifest that lists reference audio files and their metadata.

Why: tags are often missing or wrong (benchmark sets, game soundtracks), so a catalog can be
described in a spreadsheet instead. The header names the columns: ``path`` is required and
relative paths are resolved against the manifest's own directory, so a manifest and its audio
can be moved together; the ``TrackMeta`` fields are read by name; every other column (for
instance ``spotify_id`` or ``musicbrainz_recording_id``) goes into ``TrackMeta.external``.
Empty cells mean "unknown". Errors name the manifest line so that a large file is easy to fix.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

from soundmark.catalog.models import TrackMeta

_TEXT_COLUMNS = ("title", "artist", "album", "release_date", "label", "isrc", "upc", "lyrics")


class ManifestError(ValueError):
    """The manifest cannot be read or one of its rows is invalid."""


@dataclass(frozen=True)
class ManifestEntry:
    """One manifest row: the audio file it names and the metadata given for it."""

    path: Path
    meta: TrackMeta


def read_manifest(csv_path: str | PathLike[str]) -> list[ManifestEntry]:
    """The entries of the CSV manifest at ``csv_path``, in file order.

    Raises :class:`ManifestError` if the ``path`` column is missing, or a row names a file that
    does not exist or has an ``audio_id`` that is not an integer.
    """
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    try:
        with csv_path.open(encoding="utf-8-sig", newline="") as f:
            return _read_rows(csv.DictReader(f), csv_path, base)
    except UnicodeDecodeError as e:
        raise ManifestError(f"{csv_path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise ManifestError(f"{csv_path}: malformed CSV: {e}") from e


def _read_rows(reader: csv.DictReader[str], csv_path: Path, base: Path) -> list[ManifestEntry]:
    header = [(name or "").strip() for name in reader.fieldnames or ()]
    if "path" not in header:
        raise ManifestError(f"{csv_path}:1: missing required column 'path' (header: {header})")
    known = {"path", "audio_id", *_TEXT_COLUMNS}
    entries = []
    for raw in reader:
        line = reader.line_num  # last physical line of this record
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        if not any(row.values()):
            continue  # blank line
        if not row.get("path"):
            raise ManifestError(f"{csv_path}:{line}: empty 'path'")
        path = Path(row["path"]).expanduser()
        if not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise ManifestError(f"{csv_path}:{line}: audio file not found: {path}")
        audio_id = None
        if row.get("audio_id"):
            try:
                audio_id = int(row["audio_id"])
            except ValueError:
                raise ManifestError(
                    f"{csv_path}:{line}: audio_id must be an integer, got {row['audio_id']!r}"
                ) from None
        meta = TrackMeta(
            **{name: row.get(name) or None for name in _TEXT_COLUMNS},
            audio_id=audio_id,
            external={k: v for k, v in row.items() if k and k not in known and v},
        )
        entries.append(ManifestEntry(path=path, meta=meta))
    return entries
