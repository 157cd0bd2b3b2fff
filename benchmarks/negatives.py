"""False positives on a larger set of unknown audio than the bench's 60 negatives.

Usage: python benchmarks/negatives.py --db STORE [--corpus DIR] [--clips 600]

Cuts random 3/5/10 s excerpts from the corpus's held-out tracks (never ingested), adds pink noise
at 15-25 dB SNR like the bench's negative kind, and counts how many get any answer from the
recognizer at the default threshold (first search's score, and the whole recognize with its second,
wide-grid search); also prints the score distribution's top, so the margin
to the threshold is visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from soundmark.audio.decode import decode
from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.store import Store


def pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return np.fft.irfft(spec, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="a store of the corpus references")
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--clips", type=int, default=600, help="excerpts to test")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    params = FingerprintParams()
    sr = params.sample_rate
    store = Store(args.db, params)
    default = MatchSettings()
    rec = Recognizer(store, MatchSettings(min_score=-1e9))
    answering = Recognizer(store)  # the whole path: a second, wide-grid search when the first finds nothing
    answered = 0
    tracks = [decode(p, sr) for p in sorted((args.corpus / "heldout").iterdir())]
    rng = np.random.default_rng(args.seed)
    scores = []
    for i in range(args.clips):
        x = tracks[rng.integers(len(tracks))]
        seconds = (3, 5, 10)[i % 3]
        start = rng.integers(0, max(1, len(x) - seconds * sr))
        clip = x[start : start + seconds * sr].astype(np.float64)
        if np.sqrt(np.mean(clip**2)) < 1e-3:
            continue  # silence: not a meaningful negative
        noise = pink(rng, len(clip))
        snr = rng.uniform(15, 25)
        noise *= np.sqrt(np.mean(clip**2) / np.mean(noise**2) / 10 ** (snr / 10))
        query = (clip + noise).astype(np.float32)
        scored = rec.score(query)
        answered += bool(answering.recognize(query))
        scores.append(scored[0].score if scored else -1e9)
    arr = np.array(scores)
    fp = int(np.sum(arr >= default.min_score))
    print(f"{len(arr)} unknown clips from {len(tracks)} held-out tracks")
    print(f"false positives at the default threshold {default.min_score}: {fp} ({100 * fp / len(arr):.2f} %)")
    print(f"false positives of recognize (both searches): {answered} ({100 * answered / len(arr):.2f} %)")
    print("highest first-search scores:", np.round(np.sort(arr)[-10:], 2).tolist())


if __name__ == "__main__":
    main()
