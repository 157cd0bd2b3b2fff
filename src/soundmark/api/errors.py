"""The one mapping from a soundmark error raised by a use case (services/) to AudD's ApiError."""

from __future__ import annotations

from soundmark.audd.errors import ApiError
from soundmark.errors import SoundmarkError


def api_error(exc: SoundmarkError) -> ApiError:
    """AudD's error for ``exc``: its code, and its sentence when it has one of its own
    (``ServiceError.message``), else the AudD table's sentence for the code."""
    message = getattr(exc, "message", None)
    return ApiError(exc.code, message if isinstance(message, str) else None)
