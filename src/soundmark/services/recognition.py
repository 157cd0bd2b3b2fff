"""Recognition as a use case: audio (bytes, a URL, or decoded samples) in, catalog matches with
their track out. The HTTP methods and the WebSocket call it alike; whatever the engine raises is
told here, once, as a ``ServiceError`` with AudD's code and sentence.

Presenting a match as AudD's song object is the transports' part (``audd/presenter.py``), since
it needs the base URL of the answer and the ``return=`` blocks the client asked for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

import numpy as np

from soundmark.audio.fetch import fetch_url
from soundmark.catalog.models import Track
from soundmark.errors import DurationLimitError, SoundmarkError, TooLongError
from soundmark.net.addresses import AddressPolicy
from soundmark.services.errors import ServiceError
from soundmark.services.recognition_pool import Extracted, Overloaded, RecognitionPool, WorkerMatch
from soundmark.settings import Settings

# Tracks by id, awaited; ids the catalog does not know are left out of the answer.
TrackLookup = Callable[[Collection[int]], Awaitable[dict[int, Track]]]


@dataclass(frozen=True)
class RecognitionOptions:
    """What a recognize request asks besides its audio."""

    every_match: bool = False  # AudD's ``all=true``: every match, best first; else the best one


@dataclass(frozen=True)
class Recognized:
    """One match and the catalog track it is of."""

    match: WorkerMatch
    track: Track


def engine_error(exc: SoundmarkError, limit_mb: int) -> ServiceError:
    """The one translation of an engine / download error into AudD's code and sentence."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, DurationLimitError):
        return ServiceError(400, f"{exc}.")
    if isinstance(exc, TooLongError):
        return ServiceError(400, f"the audio file is too big. {limit_mb} MB is the maximum.")
    if isinstance(exc, Overloaded):
        return ServiceError(611)
    if exc.code == 500:
        return ServiceError(500, f"the file you sent is not a valid or supported audio file ({exc}).")
    if exc.code == 600:
        return ServiceError(600, f"the audio URL couldn't be downloaded: {exc}.")
    return ServiceError(exc.code)


class RecognitionService:
    """Recognise audio against the catalog through the worker pool.

    ``tracks`` looks tracks up by id, awaited (the server's read pool: no catalog read on the
    event loop); the ids it does not know are left out of its answer."""

    def __init__(self, pool: RecognitionPool, tracks: TrackLookup, settings: Settings):
        self._pool, self._tracks, self._settings = pool, tracks, settings
        self.limit_mb = settings.max_upload_bytes // (1024 * 1024)
        self._policy = AddressPolicy.from_settings(settings)

    async def download(self, url: str) -> bytes:
        """The audio at ``url`` (the settings' address policy and size cap)."""
        s = self._settings
        try:
            return await fetch_url(url, max_bytes=s.max_download_bytes, timeout=s.download_timeout, policy=self._policy)
        except SoundmarkError as exc:
            raise engine_error(exc, self.limit_mb) from exc

    def check_size(self, data: bytes) -> None:
        if len(data) > self._settings.max_upload_bytes:
            raise ServiceError(400, f"the audio file is too big. {self.limit_mb} MB is the maximum.")

    async def recognize(self, data: bytes, options: RecognitionOptions | None = None) -> list[Recognized]:
        """The matches of an encoded audio file (its first ``query_seconds``), best first."""
        self.check_size(data)
        try:
            matches = await self._pool.recognize(data, self._settings.query_seconds)
        except SoundmarkError as exc:
            raise engine_error(exc, self.limit_mb) from exc
        return await self._with_tracks(matches, options or RecognitionOptions())

    async def recognize_samples(
        self, samples: np.ndarray, options: RecognitionOptions | None = None
    ) -> list[Recognized]:
        """The matches of decoded mono float32 samples at the engine rate (default: every match)."""
        try:
            matches = await self._pool.recognize_samples(samples)
        except SoundmarkError as exc:
            raise engine_error(exc, self.limit_mb) from exc
        return await self._with_tracks(matches, options or RecognitionOptions(every_match=True))

    async def extract(self, data: bytes) -> Extracted:
        """The fingerprint of an upload to the custom catalog (up to ``max_track_hours``)."""
        self.check_size(data)
        try:
            return await self._pool.extract(data, self._settings.max_track_hours * 3600)
        except SoundmarkError as exc:
            raise engine_error(exc, self.limit_mb) from exc

    async def _with_tracks(self, matches: list[WorkerMatch], options: RecognitionOptions) -> list[Recognized]:
        chosen = matches if options.every_match else matches[:1]
        if not chosen:
            return []
        tracks = await self._tracks({m.track_id for m in chosen})  # one read for every match
        return [Recognized(m, tracks[m.track_id]) for m in chosen if m.track_id in tracks]
