"""The query print of a live stream's last seconds, every sample analysed once.

A ``QueryStream`` is fed a stream's blocks as they arrive. Each sample goes through the STFT once
and each spectrogram row is judged for candidate peaks once (query density, with
``peak_time_radius`` rows of real context on either side), however much the windows overlap.
It keeps only what the last ``window_seconds`` need: the candidates of those frames and the
loudest value of each, the rows inside the peak neighbourhood, the samples of one STFT window
and the energy of each hop of samples (for silence detection) — its size does not grow with the
stream.

``window()`` gives the last ``window_frames`` frames' peaks as ``extract.query_fingerprint``
selects them for the samples of those frames (floor below the span's loudest value, density cap
on one-second blocks counted from the window's first frame), re-based to the window's first
frame; ``.query.query_print(params)`` hashes them under every warp (fingerprint/windows.py) into the
``QueryPrint`` that ``query_fingerprint`` returns. Samples are analysed in batches
(``batch_seconds``, and whatever is pending at ``window()``), not per block. The rows
not judged yet (the last ``peak_time_radius``) are judged against the end of the window, as the
whole-array path judges its last rows. What may differ: the first ``peak_time_radius`` rows of
a window that does not start the stream are judged against the audio before it (the whole-array
path repeats its first row), so their candidates, the density cap of the first one-second block
and the pairs touching those peaks may differ; everything from the second block on is the same
(tests/fingerprint/test_query_stream.py bounds it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import FLOOR_BELOW_MAX_DB, Candidates, peak_candidates, select_peaks
from soundmark.fingerprint.spectrogram import band_bins, log_spectrogram
from soundmark.fingerprint.windows import WindowPeaks


@dataclass(frozen=True)
class StreamWindow:
    """The peaks of a stream's last window and what the monitor needs beside them."""

    query: WindowPeaks
    seconds: float  # audio the window covers (its frames' samples)
    end_sample: int  # the stream's sample where that audio ends (samples fed since the reset)
    rms: float  # RMS of those samples (linear, full scale 1.0)


class QueryStream:
    """Query prints of the last ``window_seconds`` of mono float32 blocks at ``params.sample_rate``."""

    def __init__(self, params: FingerprintParams, window_seconds: float, batch_seconds: float = 1.0) -> None:
        self.params = params
        window_samples = round(window_seconds * params.sample_rate)
        # Blocks are analysed in batches of at least this many samples (and at every window()):
        # one STFT and one peak filter per batch instead of per 250 ms block costs less overhead.
        self.batch = max(params.n_fft, round(batch_seconds * params.sample_rate))
        self.window_frames = max(2 * params.peak_time_radius + 1, (window_samples - params.n_fft) // params.hop + 1)
        self.reset()

    def reset(self) -> None:
        lo, hi = band_bins(self.params)
        self.samples = 0  # samples fed so far
        self._pending: list[np.ndarray] = []  # blocks fed but not analysed yet (under ``batch``)
        self._pending_n = 0
        self._buf = np.zeros(0, dtype=np.float32)  # samples from the start of the next frame
        self._rows = np.zeros((0, hi - lo), dtype=np.float32)  # rows kept as peak context
        self._rows_frame0 = 0  # absolute frame of _rows[0]
        self._frames = 0  # frames computed so far
        self._judged = 0  # frames whose candidates are final
        self._row_max = np.zeros(0, dtype=np.float32)  # loudest dB of the last frames (ends at _frames)
        self._energy = np.zeros(0, dtype=np.float64)  # sum of squares of each frame's first hop samples
        self._found = Candidates.concat([])  # candidates of the judged frames of the window

    @property
    def frames(self) -> int:
        """Frames analysed so far (``window()`` analyses what is pending first)."""
        return self._frames

    def state_size(self) -> int:
        """Bytes held (bounded by the window, whatever the length of the stream)."""
        c = self._found
        arrays: list[np.ndarray] = [self._buf, self._rows, self._row_max, self._energy, c.t, c.f, c.level, c.prominence]
        arrays += self._pending
        return sum(a.nbytes for a in arrays)

    def feed(self, samples: np.ndarray) -> None:
        """Consume the next samples (mono float32 at ``params.sample_rate``)."""
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples += len(x)
        self._pending.append(x)
        self._pending_n += len(x)
        if self._pending_n >= self.batch:
            self._analyse()

    def _analyse(self) -> None:
        """Spectrogram rows and final candidates of the pending samples."""
        p = self.params
        if not self._pending:
            return
        self._buf = np.concatenate([self._buf, *self._pending])
        self._pending, self._pending_n = [], 0
        if len(self._buf) < p.n_fft:
            return
        spec = log_spectrogram(self._buf, p)
        n = len(spec)
        head = self._buf[: n * p.hop].astype(np.float64).reshape(n, p.hop)
        self._buf = self._buf[n * p.hop :]  # the next frame starts here
        self._frames += n
        keep = self.window_frames
        self._row_max = np.concatenate([self._row_max, spec.max(axis=1)])[-keep:]
        self._energy = np.concatenate([self._energy, np.einsum("ij,ij->i", head, head)])[-keep:]
        self._rows = np.concatenate([self._rows, spec])
        self._judge(self._frames - p.peak_time_radius)

    def window(self) -> StreamWindow:
        """The peaks of the last ``window_frames`` frames (fewer at the start of the stream)."""
        p = self.params
        self._analyse()
        end = self._frames
        first = max(0, end - self.window_frames)
        tail = self._candidates(self._judged, end)  # provisional: judged against the window's end
        found = Candidates.concat([self._found, tail])
        found = _since(found, first)
        n = end - first
        if n == 0:
            peaks = np.zeros((0, 2), dtype=np.int32)
        else:
            floor = float(self._row_max[-n:].max()) - FLOOR_BELOW_MAX_DB
            rebased = Candidates(found.t - first, found.f, found.level, found.prominence)
            peaks = select_peaks(rebased, floor, p, p.query_peaks_per_second)
        covered = 0 if n == 0 else (n - 1) * p.hop + p.n_fft  # samples of the window's frames
        rest = self._buf[: max(0, covered - n * p.hop)].astype(np.float64)
        sq = float(self._energy[-n:].sum()) + float(rest @ rest) if n else 0.0
        rms = float(np.sqrt(sq / covered)) if covered else 0.0
        end_sample = first * p.hop + covered
        return StreamWindow(WindowPeaks(peaks, n), covered / p.sample_rate, end_sample, rms)

    def _candidates(self, start: int, stop: int) -> Candidates:
        """Candidates of frames ``[start, stop)`` from the rows held (the last ones as the edge)."""
        if stop <= start:
            return Candidates.concat([])
        f0 = self._rows_frame0
        return peak_candidates(self._rows, self.params, start - f0, stop - f0, f0)

    def _judge(self, upto: int) -> None:
        """Final candidates of frames ``[_judged, upto)``; drop what the window no longer needs."""
        r = self.params.peak_time_radius
        if upto <= self._judged:
            return
        found = Candidates.concat([self._found, self._candidates(self._judged, upto)])
        self._found = _since(found, self._frames - self.window_frames)
        self._judged = upto
        keep_from = max(self._rows_frame0, upto - r)
        self._rows = self._rows[keep_from - self._rows_frame0 :].copy()
        self._rows_frame0 = keep_from


def _since(c: Candidates, frame: int) -> Candidates:
    keep = c.t >= frame
    return Candidates(c.t[keep], c.f[keep], c.level[keep], c.prominence[keep])
