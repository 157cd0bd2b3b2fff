"""The local ear: the last seconds heard, recognised against a store on this machine.

Every sample goes through the spectrogram and the peak picker once (``QueryStream``, as a live
stream's monitor analyses it); each answer hashes and matches the last window's peaks.
"""

from __future__ import annotations

import numpy as np

from soundmark.fingerprint.query_stream import QueryStream
from soundmark.listen.session import Heard
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.store import Store
from soundmark.streams.monitor import SILENCE_RMS


class LocalEar:
    """Recognise the last ``window_seconds`` fed (mono float32 at the store's rate)."""

    def __init__(self, store: Store, settings: MatchSettings, window_seconds: float, batch_seconds: float = 1.0):
        self.rate = store.params.sample_rate
        self._params = store.params
        self._stream = QueryStream(store.params, window_seconds, batch_seconds)
        self._recognizer = Recognizer(store, settings)

    def feed(self, samples: np.ndarray) -> None:
        self._stream.feed(samples)

    def heard(self) -> Heard:
        w = self._stream.window()
        if w.rms < SILENCE_RMS:
            return Heard([], w.seconds, silent=True)
        return Heard(self._recognizer.recognize_print(w.query.query_print(self._params)), w.seconds)
