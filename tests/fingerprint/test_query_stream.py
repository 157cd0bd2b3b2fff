"""The streaming query stage: a window's print agrees with ``query_fingerprint`` of the same samples.

What may differ is stated in fingerprint/query_stream.py: the first ``peak_time_radius`` rows of
a window that does not start the stream are judged against the audio before it, where the
whole-array path repeats its first row. So the peaks of the first one-second block (where those
candidates compete for the density cap) and the hashes anchored there may differ; everything from
the second block on is identical, and recognition gives the same track and offset.
"""

from __future__ import annotations

import numpy as np
import pytest

from soundmark.demo import compose_piece
from soundmark.fingerprint.extract import QueryPrint, query_fingerprint
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.query_stream import QueryStream
from soundmark.match.recognizer import Recognizer
from soundmark.store import Store
from support import PIECE_RATE, Piece, resample

P = FingerprintParams()
SR = P.sample_rate
BLOCK = max(1, round(1.0 / P.frame_seconds))  # frames per one-second block of the density cap


def _feed(stage: QueryStream, samples: np.ndarray, sizes: list[int]) -> None:
    i, k = 0, 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        stage.feed(samples[i : i + n])
        i, k = i + n, k + 1


def _whole(stage: QueryStream, samples: np.ndarray) -> tuple[QueryPrint, np.ndarray]:
    """``query_fingerprint`` of the samples of the stage's current window, and those samples."""
    first = max(0, stage.frames - stage.window_frames)
    span = samples[first * P.hop : (stage.frames - 1) * P.hop + P.n_fft]
    return query_fingerprint(span, P), span


def _anchored(qp: QueryPrint, k: int, since: int) -> set[tuple[int, int]]:
    """(hash, time) of warp ``k`` anchored at query frame ``since`` or later."""
    w = qp.warps[k]
    keep = np.rint(w.times / w.time_rate) >= since
    return set(zip(w.hashes[keep].tolist(), w.times[keep].tolist(), strict=True))


@pytest.mark.parametrize(
    ("seed", "fed", "sizes"),
    [(7, 30.0, [4_096]), (8, 21.3, [1_000, 257, 1_023, 1, 30_000]), (9, 12.0, [80_000])],
    ids=["4096", "ragged", "10s"],
)
def test_window_print_agrees_with_query_fingerprint(seed: int, fed: float, sizes: list[int]) -> None:
    samples = 0.3 * compose_piece(seed, 40.0, SR)
    stage = QueryStream(P, 8.0)
    _feed(stage, samples[: round(fed * SR)], sizes)
    got = stage.window()
    want, span = _whole(stage, samples)
    qp = got.query.query_print(P)
    assert qp.frames == want.frames == stage.window_frames
    assert got.seconds == len(span) / SR and got.end_sample == stage.frames * P.hop - P.hop + P.n_fft
    assert got.rms == pytest.approx(float(np.sqrt(np.mean(span.astype(np.float64) ** 2))), rel=1e-9)
    # From the second one-second block on: the same peaks, and the same hashes under every warp.
    late = want.peaks[:, 0] >= BLOCK
    np.testing.assert_array_equal(qp.peaks[qp.peaks[:, 0] >= BLOCK], want.peaks[late])
    early_diff = {tuple(r) for r in qp.peaks[qp.peaks[:, 0] < BLOCK]} ^ {tuple(r) for r in want.peaks[~late]}
    assert len(early_diff) <= 2 * round(P.query_peaks_per_second)  # at most one block's worth
    assert len(want.peaks) > 200
    for k, (a, b) in enumerate(zip(qp.warps, want.warps, strict=True)):
        assert (a.time_rate, a.freq_rate) == (b.time_rate, b.freq_rate)
        assert _anchored(qp, k, BLOCK + 1) == _anchored(want, k, BLOCK + 1)
        # All told, the hashes differ by no more than those of the first block.
        sa = set(zip(a.hashes.tolist(), a.times.tolist(), strict=True))
        sb = set(zip(b.hashes.tolist(), b.times.tolist(), strict=True))
        assert len(sa ^ sb) <= 0.1 * len(sb)


def test_a_window_that_starts_the_stream_is_exactly_the_whole_array_print() -> None:
    samples = 0.3 * compose_piece(5, 10.0, SR)
    stage = QueryStream(P, 8.0)
    _feed(stage, samples[: 6 * SR], [3_000])  # less than a window: the window starts at frame 0
    got = stage.window().query.query_print(P)
    want, _ = _whole(stage, samples)
    assert got.frames == want.frames < stage.window_frames
    np.testing.assert_array_equal(got.peaks, want.peaks)
    for a, b in zip(got.warps, want.warps, strict=True):
        np.testing.assert_array_equal(a.hashes, b.hashes)
        np.testing.assert_array_equal(a.times, b.times)


@pytest.mark.parametrize("batch", [0.1, 1.0, 4.0, 30.0])
def test_the_window_does_not_depend_on_the_analysis_batch(batch: float) -> None:
    samples = 0.3 * compose_piece(6, 20.0, SR)
    ref, stage = QueryStream(P, 8.0, 0.1), QueryStream(P, 8.0, batch)
    for s in (ref, stage):
        _feed(s, samples[: 17 * SR], [2_000])
    a, b = ref.window(), stage.window()
    assert (a.seconds, a.end_sample, a.rms, a.query.frames) == (b.seconds, b.end_sample, b.rms, b.query.frames)
    assert len(a.query.peaks) > 200
    np.testing.assert_array_equal(a.query.peaks, b.query.peaks)


def test_state_does_not_grow_with_the_stream() -> None:
    loop = 0.3 * compose_piece(3, 20.0, SR)
    stage = QueryStream(P, 8.0)
    sizes = []
    for _ in range(30):  # ten minutes of audio in 0.5 s blocks
        for i in range(0, len(loop), SR // 2):
            stage.feed(loop[i : i + SR // 2])
        sizes.append(stage.state_size())
    assert stage.samples == 30 * len(loop)
    # After the first loop the state is the window's, whatever the stream's length.
    assert max(sizes[-10:]) <= 1.2 * max(sizes[1:10])
    assert max(sizes) < 200_000  # ~8 s of candidates and row maxima, a few rows, one STFT window
    assert len(stage.window().query.peaks) > 200  # and it still has the window to give


def test_reset_starts_a_new_stream_and_silence_is_quiet() -> None:
    stage = QueryStream(P, 8.0)
    stage.feed(0.3 * compose_piece(4, 10.0, SR))
    stage.reset()
    assert stage.frames == 0 and stage.samples == 0
    stage.feed(np.zeros(9 * SR, dtype=np.float32))
    quiet = stage.window()
    assert quiet.rms == 0.0 and quiet.query.frames == stage.window_frames and len(quiet.query.peaks) == 0


def test_a_streamed_window_is_recognised_like_its_samples(store: Store, pieces: list[Piece]) -> None:
    recognizer = Recognizer(store)
    piece = pieces[2]
    samples = resample(piece.samples, PIECE_RATE, SR)
    stage = QueryStream(P, 8.0)
    _feed(stage, samples[: 23 * SR], [2_205])
    window = stage.window()
    streamed = recognizer.recognize_print(window.query.query_print(P))
    whole = recognizer.recognize(_whole(stage, samples)[1])
    assert streamed and whole
    assert streamed[0].track.meta.title == whole[0].track.meta.title == piece.title
    assert streamed[0].offset_seconds == pytest.approx(whole[0].offset_seconds, abs=P.frame_seconds)
    start = (stage.frames - stage.window_frames) * P.frame_seconds
    assert streamed[0].offset_seconds == pytest.approx(start, abs=0.1)
