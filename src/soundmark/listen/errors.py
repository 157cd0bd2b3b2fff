"""What can stop listening: a device that cannot be used, a server that cannot be asked."""

from __future__ import annotations

from soundmark.errors import SoundmarkError


class ListenError(SoundmarkError):
    """Listening cannot go on; the message says why in a sentence for the user."""


class DeviceError(ListenError):
    """No such input device, or it cannot be opened or stopped giving audio."""


class ServerError(ListenError):
    """The recognition server cannot be reached or refuses the requests (token, quota)."""
