"""Why it matched, as a use case: an upload in, the evidence of its recognition (and its
picture) out, under the limits and errors of ``recognize`` (services/recognition.py), the CPU
work in the recognition pool's workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from soundmark.errors import SoundmarkError
from soundmark.match.explain import Explanation
from soundmark.services.recognition import RecognitionService, engine_error
from soundmark.services.recognition_pool import RecognitionPool
from soundmark.settings import Settings

Picture = Literal["png", "svg"]


@dataclass(frozen=True)
class Explained:
    explanation: Explanation
    picture: bytes | None  # encoded as asked (png, svg); None when only the numbers were


class ExplainService:
    def __init__(self, recognition: RecognitionService, pool: RecognitionPool, settings: Settings):
        self._recognition, self._pool, self._settings = recognition, pool, settings

    async def explain(self, data: bytes, picture: Picture | None = None) -> Explained:
        """The evidence behind recognising the encoded audio ``data`` (its first ``query_seconds``),
        as ``recognize`` would: the same size cap, decoding and AudD errors."""
        self._recognition.check_size(data)
        try:
            e, image = await self._pool.explain(data, self._settings.query_seconds, picture)
        except SoundmarkError as exc:
            raise engine_error(exc, self._recognition.limit_mb) from exc
        return Explained(e, image)
