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
              frame): the signal a noisy query keeps; then the same under the query posting
              budget (``index.base.within_budget``: 32 postings per distinct hash, stop-words
              over 4,000) with every hash's postings scaled to 10k, 100k and 1M tracks — the
              votes a query of a big catalog still gets for the same work

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
from soundmark.index.base import within_budget

Scheme = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]  # (peaks, fanout) → (hashes, times)
TRACKS_1M = 1_000_000
SIZES = (10_000, 100_000, 1_000_000)
BUDGET_PER_HASH = 32
STOP_WORD_CAP = 4000
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


def count_of(keys: np.ndarray, counts: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Postings of each of ``u`` in a (sorted keys, counts) table."""
    if len(keys) == 0:
        return np.zeros(len(u), dtype=np.int64)
    at = np.clip(np.searchsorted(keys, u), 0, len(keys) - 1)
    return np.where(keys[at] == u, counts[at], 0).astype(np.int64)


def scaled(c_all: np.ndarray, c_true: np.ndarray, size: int, n_refs: int) -> np.ndarray:
    """Postings a hash would hold in a catalog of ``size`` tracks: the true track's own, and the
    other references' scaled from n_refs − 1 tracks to size − 1 (a hash no other reference has
    stays at the true track's: optimistic for the rarest, alike for every scheme)."""
    return c_true + np.rint((c_all - c_true) * (size - 1) / (n_refs - 1)).astype(np.int64)


def with_subkeys(peaks: np.ndarray, fanout: int, probes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Today's 22-bit pairs, each with an 8-bit sub-key from the peak right after its target
    (Δt//2 capped at 7, Δf//8 in ±16): (hashes, times, sub-keys (pairs, probes)). The index
    stores one sub-key per pair (probes = 1); a query tries the next ``probes`` peaks, since its
    denser peaks may put one between."""
    n = len(peaks)
    t, f = peaks[:, 0].astype(np.int64), peaks[:, 1].astype(np.int64)
    i, j = _targets(peaks, fanout, 1, 63, 63)
    h = (f[i] << 13) | ((f[j] - f[i] + 64) << 6) | (t[j] - t[i])
    subs = np.full((len(i), probes), -1, dtype=np.int64)
    for k in range(probes):
        c = j + 1 + k
        ok = c < n
        cc = np.minimum(c, n - 1)
        dt = t[cc] - t[j]
        ok &= dt <= 15
        sub = (np.minimum(dt, 15) // 2) << 5 | np.clip((f[cc] - f[j]) // 8 + 16, 0, 31)
        subs[:, k] = np.where(ok, sub, 255)  # 255: no peak close enough after the target
    return h, t[i], subs


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
    head = f"{'scheme':<20} {'postings/s':>10} {'bits':>6} {'met@1M':>8}"
    print(head + "  " + " ".join(f"{k:>22}" for k in queries))
    print(" " * len(head) + "  " + " ".join(f"{'all/10k/100k/1M':>22}" for _ in queries))
    for name, scheme in SCHEMES.items():
        stored = {title: scheme(pk, p.fanout) for title, pk in refs.items()}
        allh = np.concatenate([h for h, _ in stored.values()])
        keys, key_counts = np.unique(allh, return_counts=True)
        bits = collision_bits(allh)
        per_s = len(allh) / seconds
        met = per_s * SECONDS_PER_TRACK * TRACKS_1M * 2.0**-bits
        codes = {title: np.unique((h << 24) | t) for title, (h, t) in stored.items()}
        cols = []
        for _kind, qs in queries.items():
            votes: list[list[int]] = [[] for _ in range(1 + len(SIZES))]
            for title, offset, pk in qs:
                qh, qt = scheme(pk, p.query_fanout)
                want = qt + round(offset * fps)
                got = np.zeros(len(qh), dtype=bool)
                for d in (-1, 0, 1):
                    got |= np.isin((qh << 24) | (want + d), codes[title])
                votes[0].append(int(got.sum()))
                u, inverse = np.unique(qh, return_inverse=True)
                c_all = count_of(keys, key_counts, u)
                c_true = count_of(*np.unique(stored[title][0], return_counts=True), u)
                for s_i, size in enumerate(SIZES):
                    counts = scaled(c_all, c_true, size, len(refs))
                    keep = within_budget(counts, STOP_WORD_CAP, BUDGET_PER_HASH * len(u))
                    votes[1 + s_i].append(int((got & keep[inverse]).sum()))
            cols.append("/".join(f"{np.median(v):.0f}" for v in votes).rjust(22))
        print(f"{name:<20} {per_s:>10.1f} {bits:>6.2f} {met:>8.0f}  " + " ".join(cols), flush=True)
    hybrid(refs, queries, p, seconds, fps)


def hybrid(refs: dict[str, np.ndarray], queries: dict[str, list[tuple[str, float, np.ndarray]]],
           p: FingerprintParams, seconds: float, fps: float, probes: int = 3) -> None:  # fmt: skip
    """Today's pairs with a sub-key: a hash whose postings fit the budget is read whole (today's
    votes exactly), a longer one only at the query's sub-keys (triplet-like selectivity)."""
    stored = {title: with_subkeys(pk, p.fanout, 1) for title, pk in refs.items()}
    allh = np.concatenate([h for h, _, _ in stored.values()])
    allk = np.concatenate([(h << 8) | s[:, 0] for h, _, s in stored.values()])
    keys_h, counts_h = np.unique(allh, return_counts=True)
    keys_k, counts_k = np.unique(allk, return_counts=True)
    codes = {title: np.unique((((h << 8) | s[:, 0]) << 24) | t) for title, (h, t, s) in stored.items()}
    cols = []
    for _kind, qs in queries.items():
        votes: list[list[int]] = [[] for _ in range(1 + len(SIZES))]
        for title, offset, pk in qs:
            qh, qt, qs_ = with_subkeys(pk, p.query_fanout, probes)
            want = qt + round(offset * fps)
            # which probe (if any) meets the true posting at the true alignment
            meets = np.zeros((len(qh), probes), dtype=bool)
            for k in range(probes):
                code = ((qh << 8) | qs_[:, k]) << 24
                for d in (-1, 0, 1):
                    meets[:, k] |= np.isin(code | (want + d), codes[title])
            true_pair = meets.any(axis=1)
            votes[0].append(int(true_pair.sum()))
            th, _tt, ts = stored[title]
            uh, inv_h = np.unique(qh, return_inverse=True)
            ch_all = count_of(keys_h, counts_h, uh)
            ch_true = count_of(*np.unique(th, return_counts=True), uh)
            qk = (qh[:, None] << 8) | qs_
            uk, inv_k = np.unique(qk.ravel(), return_inverse=True)
            ck_all = count_of(keys_k, counts_k, uk)
            ck_true = count_of(*np.unique((th << 8) | ts[:, 0], return_counts=True), uk)
            for s_i, size in enumerate(SIZES):
                budget = BUDGET_PER_HASH * len(uh)
                nh = scaled(ch_all, ch_true, size, len(refs))
                whole = within_budget(nh, 1 << 62, budget)  # whole reads first, rarest first
                spent = int(nh[whole].sum())
                # the hashes left are read at their sub-keys, rarest first, in what budget is left
                nk = scaled(ck_all, ck_true, size, len(refs))
                left = ~whole[inv_h]
                k_left = np.zeros(len(uk), dtype=bool)
                k_left[inv_k.reshape(qk.shape)[left].ravel()] = True
                kk = np.where(k_left, nk, 0)
                sub_ok = k_left & within_budget(kk, STOP_WORD_CAP, max(0, budget - spent))
                got = true_pair & whole[inv_h]
                got |= (meets & sub_ok[inv_k.reshape(qk.shape)]).any(axis=1)
                votes[1 + s_i].append(int(got.sum()))
        cols.append("/".join(f"{np.median(v):.0f}" for v in votes).rjust(22))
    per_s = len(allh) / seconds
    print(f"{'pairs-22 + sub-key':<20} {per_s:>10.1f} {collision_bits(allk):>6.2f} {'':>8}  " + " ".join(cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
