"""The Python API: a store opened as an object, for scripts, notebooks and other programs.

    import soundmark

    with soundmark.open("data/db") as sm:
        sm.add("music/")                      # files or folders; tags fill the metadata
        match = sm.recognize("clip.mp3")      # a path, encoded bytes or a numpy array
        if match:
            print(match.title, match.artist, match.timecode, match.score)

It calls the same use cases as the CLI and the server (``services/catalog.py`` to add and remove,
``match/recognizer.py`` to recognise, ``match/scan.py`` for long recordings), with the settings of
one ``Settings`` object (by default from ``SOUNDMARK_*`` variables, as the CLI reads them).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from soundmark.audio.decode import decode
from soundmark.catalog.models import Track, TrackMeta
from soundmark.errors import TooShortError
from soundmark.ingest import IngestItem, IngestReport
from soundmark.match.recognizer import Match, MatchSettings, Recognizer
from soundmark.match.scan import ScanResult, scan
from soundmark.match.tracklist import ScanSettings
from soundmark.services.catalog import Removal, add_files, items_to_add, remove_tracks
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params, use_catalog_url

Audio = str | os.PathLike[str] | bytes | np.ndarray
MIN_QUERY_SECONDS = 1.0  # as for the API: shorter audio cannot be told apart from chance


class Soundmark:
    """An opened store: add, recognise, scan, list and remove tracks. Close it (or use ``with``)."""

    def __init__(
        self,
        db: str | os.PathLike[str],
        settings: Settings | None = None,
        *,
        create: bool = True,
        index_url: str | None = None,
        catalog_url: str | None = None,
    ) -> None:
        given: dict[str, Any] = {"db": Path(db)}  # the other settings from SOUNDMARK_* variables
        urls: dict[str, Any] = {
            k: v for k, v in (("index_url", index_url), ("catalog_url", catalog_url)) if v is not None
        }
        self.settings = settings or Settings(**given, **urls)
        if settings is not None and urls:  # validated like the variables
            self.settings = Settings.model_validate({**settings.model_dump(), **urls})
        self.db = Path(db)
        use_catalog_url(self.db, self.settings.catalog_url, create=create)  # before the recorded parameters are read
        self.store = Store(self.db, recorded_params(self.db), create=create, index_url=self.settings.index_url)
        self._recognizer = Recognizer(
            self.store, MatchSettings(min_score=self.settings.min_score, min_votes=self.settings.min_votes)
        )

    def __enter__(self) -> Soundmark:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # --- catalog ------------------------------------------------------------------------------
    def add(self, paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
            metadata: TrackMeta | None = None) -> IngestReport:  # fmt: skip
        """Fingerprint audio files (folders are searched recursively) and add them atomically in
        batches; audio already in the store is reported as a duplicate, not added twice.

        ``metadata`` (only with a single file) overrides what the file's tags say.
        """
        given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if metadata is not None:
            if len(given) != 1 or not Path(given[0]).is_file():
                raise ValueError("metadata can be given for a single file only")
            items = [IngestItem(Path(given[0]), metadata)]
        else:
            items = items_to_add(Path(p) for p in given)
        return add_files(self.store, items, self.settings)

    def remove(self, *track_ids: int) -> Removal:
        """Delete tracks and their fingerprints (ids that name no track are listed as missing)."""
        return remove_tracks(self.store, track_ids)

    def tracks(self, limit: int = 1000, offset: int = 0) -> list[Track]:
        """The stored tracks in id order, a page at a time."""
        return self.store.catalog.list_tracks(limit, offset)

    def track(self, track_id: int) -> Track | None:
        return self.store.catalog.get_track(track_id)

    # --- recognition --------------------------------------------------------------------------
    def recognize(self, audio: Audio, sample_rate: int | None = None) -> Match | None:
        """The song ``audio`` plays (its first ``query_seconds``), or None when it is not in the store.

        ``audio`` is a file path, the bytes of an encoded file, or samples (mono, or frames ×
        channels) at ``sample_rate`` Hz (needed for arrays). Raises ``TooShortError`` under 1 s.
        """
        matches = self.recognize_all(audio, sample_rate)
        return matches[0] if matches else None

    def recognize_all(self, audio: Audio, sample_rate: int | None = None) -> list[Match]:
        """The best match and the alternatives reported beside it (other ids holding the same audio)."""
        samples = self._samples(audio, sample_rate)
        rate = self.store.params.sample_rate
        if len(samples) < MIN_QUERY_SECONDS * rate:
            raise TooShortError(f"only {len(samples) / rate:.2f} s of audio")
        return self._recognizer.recognize(samples)

    def scan(self, path: str | os.PathLike[str], *, workers: int | None = None) -> ScanResult:
        """The tracklist of a long recording (a mix, a broadcast): which tracks play where."""
        s = ScanSettings(hop_seconds=self.settings.scan_hop_seconds)
        return scan(Path(path), self.db, s, workers=workers)

    def _samples(self, audio: Audio, sample_rate: int | None) -> np.ndarray:
        rate = self.store.params.sample_rate
        limit = self.settings.query_seconds
        if not isinstance(audio, np.ndarray):
            return decode(audio if isinstance(audio, bytes) else Path(audio), rate, max_seconds=limit)
        if sample_rate is None:
            raise ValueError("sample_rate is needed for an array of samples")
        x = np.asarray(audio, dtype=np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        x = x[: int(limit * sample_rate)]
        if sample_rate != rate:
            # Imported here: scipy.signal costs a second to import, and ``import soundmark`` (every
            # command, every spawned worker) needs it only for arrays at another rate.
            from scipy.signal import resample_poly

            g = math.gcd(int(sample_rate), rate)
            x = resample_poly(x, rate // g, int(sample_rate) // g).astype(np.float32)
        return x


def open(
    db: str | os.PathLike[str],
    settings: Settings | None = None,
    *,
    create: bool = True,
    index_url: str | None = None,
    catalog_url: str | None = None,
) -> Soundmark:
    """Open (or, with ``create``, make) the store at ``db``: ``with soundmark.open("data/db") as sm: ...``.

    ``index_url`` (``redis://host:port[,host:port...][/prefix]``, as ``SOUNDMARK_INDEX_URL``) puts
    a new store's fingerprint index on a Redis Cluster; ``catalog_url`` (``postgresql://...``, as
    ``SOUNDMARK_CATALOG_URL``) its catalog in PostgreSQL, shared with every node (``db`` then holds
    only where the catalog is). The store records both, so later opens need only ``db``.
    """
    return Soundmark(db, settings, create=create, index_url=index_url, catalog_url=catalog_url)
