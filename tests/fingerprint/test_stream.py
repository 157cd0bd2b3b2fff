"""The streaming Fingerprinter gives exactly the whole-array reference fingerprint."""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.demo import compose_piece
from soundmark.fingerprint.extract import fingerprint_samples
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.stream import Fingerprinter

P = FingerprintParams()
SR = P.sample_rate


def _signal() -> np.ndarray:
    # Music, then a quiet passage (the floor below the loudest frame only settles late), then a
    # louder coda: peaks that the final floor removes must not survive a block boundary.
    piece = compose_piece(7, 30.0, SR)
    rng = np.random.default_rng(3)
    quiet = (6e-4 * rng.standard_normal(6 * SR)).astype(np.float32)
    return np.concatenate([0.2 * piece[: 20 * SR], quiet, piece[20 * SR :]]).astype(np.float32)


def _feed(samples: np.ndarray, sizes: list[int]) -> Fingerprinter:
    fp = Fingerprinter(P)
    i, k = 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        fp.feed(samples[i : i + n])
        i, k = i + n, k + 1
    return fp


@pytest.mark.parametrize(
    "sizes",
    [[len(_signal())], [80_000], [4_096], [1_000, 257, 1_023, 1, 30_000], [255, 256, 1_024, 1_025]],
    ids=["whole", "10s", "4096", "ragged", "around-n_fft"],
)
def test_streamed_fingerprint_equals_whole_array(sizes: list[int]) -> None:
    samples = _signal()
    whole = fingerprint_samples(samples, P)
    fp = _feed(samples, sizes)
    assert fp.seconds == len(samples) / SR
    streamed = fp.flush()
    assert len(whole.hashes) > 1000
    np.testing.assert_array_equal(streamed.peaks, whole.peaks)
    np.testing.assert_array_equal(streamed.hashes, whole.hashes)
    np.testing.assert_array_equal(streamed.times, whole.times)


def test_flush_resets_and_short_input_gives_nothing() -> None:
    fp = Fingerprinter(P)
    fp.feed(np.zeros(P.n_fft - 1, dtype=np.float32))
    empty = fp.flush()
    assert len(empty.peaks) == 0 and len(empty.hashes) == 0
    samples = _signal()[: 8 * SR]
    fp.feed(samples[:100])
    fp.reset()
    fp.feed(samples)
    np.testing.assert_array_equal(fp.flush().hashes, fingerprint_samples(samples, P).hashes)
