"""Stored peaks of the Redis index: their code, and a small cache of decoded ones.

Owned by ``index/redis_cluster.py``. A track's peaks (``N:p:<slot>``) are uint32 each,
``frame << PEAK_BIN_BITS | bin``. A slot is never reused and its peaks never change, so a process
may keep what it read: ``PeakCache`` holds the decoded peaks of the tracks verified most
recently, up to a byte budget (verification reads the peaks of ~6 candidates a query; a popular
track's are then read from the cluster once, not on every query). Whether a track is still live
is checked before the cache is asked, so a removed track's cached peaks are never returned.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

PEAK_BIN_BITS = 10
MAX_PEAK_FRAME = (1 << (32 - PEAK_BIN_BITS)) - 1
CACHE_BYTES = 64 << 20  # decoded peaks kept per process (~1,000 four-minute tracks)


def encode_peaks(peaks: np.ndarray) -> bytes:
    p = np.asarray(peaks).reshape(-1, 2).astype(np.uint32)
    return ((p[:, 0] << np.uint32(PEAK_BIN_BITS)) | p[:, 1]).astype("<u4").tobytes()


def decode_peaks(data: bytes) -> np.ndarray:
    packed = np.frombuffer(data, dtype="<u4").astype(np.int64)
    return np.stack([packed >> PEAK_BIN_BITS, packed & ((1 << PEAK_BIN_BITS) - 1)], axis=1).astype(np.int32)


class PeakCache:
    """Decoded peaks by slot, least recently used dropped first; safe to share between threads.
    ``get`` returns a copy, so a caller may change what it gets."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, slot: int) -> np.ndarray | None:
        with self._lock:
            peaks = self._items.get(slot)
            if peaks is None:
                return None
            self._items.move_to_end(slot)
        return peaks.copy()

    def put(self, slot: int, peaks: np.ndarray) -> None:
        if peaks.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(slot, None)
            self._bytes -= 0 if old is None else old.nbytes
            self._items[slot] = peaks.copy()
            self._bytes += peaks.nbytes
            while self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= dropped.nbytes
