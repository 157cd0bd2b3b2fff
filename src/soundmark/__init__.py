"""soundmark: self-hosted music recognition with an AudD-compatible API.

The Python API (see ``library.py``): ``soundmark.open(db)`` gives a ``Soundmark`` with ``add``,
``recognize``, ``scan``, ``tracks`` and ``remove``.
"""

__version__ = "0.1.0"

from soundmark.catalog.models import Track, TrackMeta
from soundmark.library import Soundmark, open
from soundmark.match.recognizer import Match

__all__ = ["Match", "Soundmark", "Track", "TrackMeta", "__version__", "open"]
