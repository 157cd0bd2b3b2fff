"""Typed errors of the recognition pipeline.

Each carries the AudD error code that the HTTP API answers with, so the mapping lives in one place.
"""

from __future__ import annotations


class SoundmarkError(Exception):
    """Base class; ``code`` is the AudD error code for the API."""

    code = 100


class AudioError(SoundmarkError):
    """The input is not audio, is truncated, or cannot be decoded (AudD 500)."""

    code = 500


class EmptyAudioError(AudioError):
    """The input decodes to no samples at all."""


class TooShortError(SoundmarkError):
    """Too little audio to fingerprint (AudD 300)."""

    code = 300


class TooLongError(SoundmarkError):
    """The input exceeds a configured duration or size limit (AudD 400)."""

    code = 400


class DurationLimitError(TooLongError):
    """The input decodes to more audio than a configured duration limit (AudD 400)."""


class StoreError(SoundmarkError):
    """The store cannot be opened or used as asked."""


class ParamsMismatchError(StoreError):
    """The store was built with other fingerprint parameters than the running code uses."""
