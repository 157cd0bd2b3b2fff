"""The error a use case refuses a request with: a soundmark error carrying AudD's code and the
sentence to show. Transports turn it into their own form (an AudD error body, a CLI message)."""

from __future__ import annotations

from soundmark.errors import SoundmarkError


class ServiceError(SoundmarkError):
    """A request a use case refuses; ``code`` is AudD's, ``message`` the sentence (None: the
    standard sentence of the code, from the AudD error table)."""

    def __init__(self, code: int, message: str | None = None):
        super().__init__(message or f"error {code}")
        self.code = code
        self.message = message
