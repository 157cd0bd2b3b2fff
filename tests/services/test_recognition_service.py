"""The recognition use case over a real worker pool and store: typed matches with their track,
and the engine's errors told once, with AudD's codes and sentences."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path

import pytest

from soundmark.catalog.models import Track
from soundmark.services.errors import ServiceError
from soundmark.services.recognition import RecognitionOptions, RecognitionService
from soundmark.services.recognition_pool import RecognitionPool
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params
from support import Piece


def _service(db: Path, store: Store, **settings: object) -> tuple[RecognitionService, RecognitionPool]:
    s = Settings(db=db, **settings)  # type: ignore[arg-type]
    pool = RecognitionPool(db, workers=1, max_inflight=4, min_score=s.min_score, min_votes=s.min_votes)

    async def tracks(ids: Collection[int]) -> dict[int, Track]:
        return await asyncio.to_thread(store.catalog.get_tracks, ids)

    return RecognitionService(pool, tracks, s), pool


def test_recognize_answers_the_track_of_the_best_match_and_every_match_on_request(
    built_store: Path, pieces: list[Piece]
) -> None:
    piece = pieces[2]
    data = piece.path.read_bytes()

    async def run() -> None:
        with Store(built_store, recorded_params(built_store)) as store:
            service, pool = _service(built_store, store)
            try:
                best = await service.recognize(data)
                every = await service.recognize(data, RecognitionOptions(every_match=True))
            finally:
                pool.close()
        assert [r.track.meta.title for r in best] == [piece.title]
        assert best[0].match.track_id == best[0].track.id and best[0].match.offset_seconds < 1.0
        assert every[0] == best[0] and len(every) >= 1

    asyncio.run(run())


def test_engine_errors_become_audd_codes_with_their_sentence(built_store: Path, tmp_path: Path) -> None:
    async def run() -> None:
        with Store(built_store, recorded_params(built_store)) as store:
            service, pool = _service(built_store, store, max_upload_bytes=1024 * 1024)
            try:
                with pytest.raises(ServiceError) as not_audio:
                    await service.recognize(b"this is not audio at all" * 100)
                with pytest.raises(ServiceError) as too_big:
                    await service.recognize(b"\0" * (1024 * 1024 + 1))
                with pytest.raises(ServiceError) as private:
                    await service.download("http://127.0.0.1:9/a.mp3")
            finally:
                pool.close()
        assert not_audio.value.code == 500
        assert str(not_audio.value).startswith("the file you sent is not a valid or supported audio file")
        assert too_big.value.code == 400 and str(too_big.value) == "the audio file is too big. 1 MB is the maximum."
        assert private.value.code == 600 and "couldn't be downloaded" in str(private.value)

    asyncio.run(run())
