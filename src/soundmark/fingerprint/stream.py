"""The reference fingerprint as a streaming consumer: ``feed`` blocks, ``flush`` the fingerprint.

A ``Fingerprinter`` holds only what the next frames need: the samples of one STFT window, the
spectrogram rows inside the peak neighbourhood (``peak_time_radius`` frames either side) and the
candidate peaks found so far. Memory therefore grows with the fingerprint, not with the audio,
and a six-hour file costs what its peaks cost. Fed with any block sizes it gives exactly the
fingerprint of ``extract.fingerprint_samples`` on the whole array (``tests/fingerprint`` pins it).
"""

from __future__ import annotations

import numpy as np

from soundmark.audio.decode import Source, iter_blocks
from soundmark.fingerprint.extract import Fingerprint
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import FLOOR_BELOW_MAX_DB, Candidates, peak_candidates, select_peaks
from soundmark.fingerprint.spectrogram import band_bins, log_spectrogram


class Fingerprinter:
    """Reference fingerprint (``ref_peaks_per_second``, ``fanout``) of mono float32 blocks."""

    def __init__(self, params: FingerprintParams) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        lo, hi = band_bins(self.params)
        self.samples = 0  # samples fed so far
        self._buf = np.zeros(0, dtype=np.float32)  # samples from the start of the next frame
        self._rows = np.zeros((0, hi - lo), dtype=np.float32)  # spectrogram rows kept as context
        self._rows_frame0 = 0  # absolute frame of _rows[0]
        self._frames = 0  # frames computed so far
        self._judged = 0  # frames whose candidates are final
        self._max = -np.inf  # loudest spectrogram value so far (dB)
        self._found: list[Candidates] = []

    @property
    def seconds(self) -> float:
        return self.samples / self.params.sample_rate

    def feed(self, samples: np.ndarray) -> None:
        """Consume the next samples (mono float32 at ``params.sample_rate``)."""
        p = self.params
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples += len(x)
        self._buf = np.concatenate([self._buf, x]) if len(self._buf) else x
        if len(self._buf) < p.n_fft:
            return
        spec = log_spectrogram(self._buf, p)
        self._buf = self._buf[len(spec) * p.hop :]  # the next frame starts here
        self._frames += len(spec)
        self._max = max(self._max, float(spec.max()))
        self._rows = np.concatenate([self._rows, spec])
        self._judge(self._frames - p.peak_time_radius)

    def flush(self) -> Fingerprint:
        """The fingerprint of everything fed since the last reset (the state is then reset)."""
        p = self.params
        self._judge(self._frames, final=True)
        if self._frames == 0:
            peaks = np.zeros((0, 2), dtype=np.int32)
        else:
            peaks = select_peaks(Candidates.concat(self._found), self._max - FLOOR_BELOW_MAX_DB, p,
                                 p.ref_peaks_per_second)  # fmt: skip
        self.reset()
        h, t = pair_hashes(peaks[:, 0], peaks[:, 1], p, p.fanout)
        return Fingerprint(peaks, h, t)

    def _judge(self, upto: int, *, final: bool = False) -> None:
        """Find the candidates of frames ``[_judged, upto)``; keep only the rows later ones need."""
        r = self.params.peak_time_radius
        if upto <= self._judged or (not final and upto <= 0):
            return
        first = self._judged - self._rows_frame0
        found = peak_candidates(self._rows, self.params, first, upto - self._rows_frame0, self._rows_frame0)
        # The floor only rises, so a candidate under today's floor is under the final one too.
        self._found.append(found.above(self._max - FLOOR_BELOW_MAX_DB))
        self._judged = upto
        keep_from = max(self._rows_frame0, upto - r)
        self._rows = self._rows[keep_from - self._rows_frame0 :].copy()
        self._rows_frame0 = keep_from


def fingerprint_source(source: Source, params: FingerprintParams, max_seconds: float) -> tuple[Fingerprint, float]:
    """Decode ``source`` straight into a Fingerprinter: (reference fingerprint, seconds of audio).

    Raises DurationLimitError as soon as the audio passes ``max_seconds`` (checked while it
    decodes), and what ``iter_blocks`` raises for unreadable input.
    """
    fp = Fingerprinter(params)
    for block in iter_blocks(source, params.sample_rate, max_seconds=max_seconds, refuse_longer=True):
        fp.feed(block)
    seconds = fp.seconds
    return fp.flush(), seconds
