"""Which hash holds enough information for a million tracks without losing noisy queries (issue 11)?

Usage: python benchmarks/hash_schemes.py [--corpus ~/benchdata/public] [--kinds K,...] [--per-kind 30]

An experiment, not a backend: for each candidate hash scheme it hashes the corpus's references
at the index's density and the public queries (known track and offset, from ``truth.csv``) at the
query's, both from soundmark's own peaks, and reports per scheme and per query kind:

  postings/s  postings the index stores per second of audio (index size scales with it)
  bits        collision entropy of the stored hashes, −log2 Σ p²: a query hash meets on average
              postings × 2^−bits stored postings (same-distribution draws)
  met@1M      that, extrapolated to one million 3.3-minute tracks: the postings one query hash
              makes the vote read
  true votes  median query hashes that meet the true reference at the true alignment (±1
              frame): the signal a noisy query keeps

A scheme is better for scale when met@1M falls without the true votes of the noisy kinds falling.
Warped kinds (speed, tempo, pitch) are left out: every scheme meets them through the warp grid.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from soundmark.audio.decode import decode
from soundmark.fingerprint.hashes import pair_hashes
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.peaks import find_peaks
from soundmark.fingerprint.spectrogram import log_spectrogram

Scheme = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (peaks, fanout) → (hashes, times)
TRACKS_1M = 1_000_000
SECONDS_PER_TRACK = 200.0


def _targets(peaks: np.ndarray, fanout: int, min_dt: int, max_dt: int, max_df: int) -> tuple[np.ndarray, np.ndarray]:
    """(anchor, target) index pairs: each anchor's next ``fanout`` peaks inside the zone."""
    n = len(peaks)
    t, f = peaks[:, 0].astype(np.int64), peaks[:, 1].astype(np.int64)
    taken = np.zeros(n, dtype=np.int64)
    ai, aj = [], []
    for k in range(1, min(n - 1, 8 * fanout) + 1):
        i = np.arange(n - k)
        j = i + k
        ok = (t[j] - t[i] >= min_dt) & (t[j] - t[i] <= max_dt) & (np.abs(f[j] - f[i]) <= max_df) & (taken[i] < fanout)
        taken[i[ok]] += 1
        ai.append(i[ok])
        aj.append(j[ok])
    return np.concatenate(ai), np.concatenate(aj)


def pairs_22(peaks: np.ndarray, fanout: int) -> tuple[np.ndarray, np.ndarray]:
    """Today's hash (hash_version 2, ``fingerprint.hashes``): anchor bin 9 | Δf 7 | Δt 6 bits."""
    h, t = pair_hashes(peaks[:, 0], peaks[:, 1], FingerprintParams(), fanout)
    return h.astype(np.int64), t.astype(np.int64)


def pairs_wide(peaks: np.ndarray, fanout: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs over a wider zone: Δt 3..127 frames (7 bits), |Δf| ≤ 127 (8 bits): 24 bits."""
    i, j = _targets(peaks, fanout, 3, 127, 127)
    t, f = peaks[:, 0].astype(np.int64), peaks[:, 1].astype(np.int64)
    h = (f[i] << 15) | ((f[j] - f[i] + 128) << 7) | (t[j] - t[i])
    return h, t[i]


def triplets() -> Scheme:
    """Anchor a, targets b then c from its next peaks: a's bin 9 | Δf_ab 7 | Δt_ab 6 | Δt_bc 4 |
    Δf_ac / 4 (5 bits, coarse: the third peak is the one noise moves most): 31 bits.
    The first k targets of an anchor give k(k-1)/2 triplets, k the smallest with k(k-1)/2 ≥
    ``fanout``: 6 for the index (k = 4, as many postings as pairs), 10 for queries (k = 5)."""

    def scheme(peaks: np.ndarray, fanout: int) -> tuple[np.ndarray, np.ndarray]:
        k = 2
        while k * (k - 1) // 2 < fanout:
            k += 1
        i, j = _targets(peaks, k, 1, 63, 63)
        t, f = peaks[:, 0].astype(np.int64), peaks[:, 1].astype(np.int64)
        order = np.lexsort((t[j], i))
        i, j = i[order], j[order]
        hs, ts = [], []
        for a in range(k):
            for b in range(a + 1, k):
                # the a-th and b-th target of every anchor that has them
                first = np.searchsorted(i, np.unique(i))
                cnt = np.diff(np.append(first, len(i)))
                has = cnt > b
                anc = i[first[has]]
                jb, jc = j[first[has] + a], j[first[has] + b]
                dtab, dfab = t[jb] - t[anc], f[jb] - f[anc]
                dtbc = np.minimum(t[jc] - t[jb], 15)
                dfac = np.clip((f[jc] - f[anc]) // 4, -16, 15) + 16
                h = (f[anc] << 22) | ((dfab + 64) << 15) | (dtab << 9) | (dtbc << 5) | dfac
                hs.append(h)
                ts.append(t[anc])
        return np.concatenate(hs), np.concatenate(ts)

    return scheme


SCHEMES: dict[str, Scheme] = {"pairs-22 (today)": pairs_22, "pairs-24 wide zone": pairs_wide, "triplets-31": triplets()}


def collision_bits(hashes: np.ndarray) -> float:
    _, c = np.unique(hashes, return_counts=True)
    n = c.sum()
    s = float((c * (c - 1)).sum()) / (n * (n - 1))  # unbiased Σ p²
    return -math.log2(s) if s > 0 else float("inf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--kinds", default="clean,noise_snr0,noise_snr-5,reverb_noise,gsm,speaker")
    ap.add_argument("--per-kind", type=int, default=30, help="queries per kind")
    args = ap.parse_args(argv)
    p = FingerprintParams()
    fps = p.sample_rate / p.hop
    refs: dict[str, np.ndarray] = {}
    seconds = 0.0
    with open(args.corpus / "manifest.csv") as fh:
        for row in csv.DictReader(fh):
            x = decode(args.corpus / row["path"], p.sample_rate)
            seconds += len(x) / p.sample_rate
            refs[row["title"]] = find_peaks(log_spectrogram(x, p), p, p.ref_peaks_per_second)
    print(f"{len(refs)} references, {seconds / 3600:.2f} h", file=sys.stderr)
    queries: dict[str, list[tuple[str, float, np.ndarray]]] = {k: [] for k in args.kinds.split(",")}
    with open(args.corpus / "truth.csv") as fh:
        for row in csv.DictReader(fh):
            k = row["kind"]
            if k in queries and len(queries[k]) < args.per_kind and row["title"] in refs:
                x = decode(args.corpus / row["query"], p.sample_rate)
                peaks = find_peaks(log_spectrogram(x, p), p, p.query_peaks_per_second)
                queries[k].append((row["title"], float(row["offset"]), peaks))
    print(f"{'scheme':<20} {'postings/s':>10} {'bits':>6} {'met@1M':>8}  " + " ".join(f"{k:>12}" for k in queries))
    for name, scheme in SCHEMES.items():
        stored = {title: scheme(pk, p.fanout) for title, pk in refs.items()}
        allh = np.concatenate([h for h, _ in stored.values()])
        bits = collision_bits(allh)
        per_s = len(allh) / seconds
        met = per_s * SECONDS_PER_TRACK * TRACKS_1M * 2.0**-bits
        codes = {title: np.unique((h << 24) | t) for title, (h, t) in stored.items()}
        cols = []
        for _kind, qs in queries.items():
            votes = []
            for title, offset, pk in qs:
                qh, qt = scheme(pk, p.query_fanout)
                want = qt + round(offset * fps)
                got = np.zeros(len(qh), dtype=bool)
                for d in (-1, 0, 1):
                    got |= np.isin((qh << 24) | (want + d), codes[title])
                votes.append(int(got.sum()))
            cols.append(f"{np.median(votes):>12.1f}")
        print(f"{name:<20} {per_s:>10.1f} {bits:>6.2f} {met:>8.0f}  " + " ".join(cols), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
