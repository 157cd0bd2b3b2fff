"""Peak pairs → bit-packed 32-bit hashes with anchor times.

Layout (low to high bits): dt (dt_bits) | df + 2**(df_bits-1) (df_bits) | anchor bin (freq_bits).
"""

from __future__ import annotations

import numpy as np

from soundmark.fingerprint.params import FingerprintParams


def pair_hashes(
    times: np.ndarray,
    freqs: np.ndarray,
    params: FingerprintParams,
    fanout: int,
    jitter: int = 0,
    *,
    compiled: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of peak pairs.

    ``times`` (frames) and ``freqs`` (bins) are float or int arrays of equal length, sorted by time.
    Each anchor pairs with its next ``fanout`` peaks that lie within max_dt frames and max_df bins.
    ``jitter`` > 0 (queries only) also emits each pair with Δt and Δf moved by up to ±jitter, so a
    peak that noise nudged by one frame or bin still meets its reference hash.
    ``compiled`` pairs the peaks in one compiled loop (``pair_kernel``, same pairs in the same
    order): for the query path's many small calls.
    Returns (hashes uint32, anchor_times int32).
    """
    n = len(times)
    if n < 2:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int32)
    t = np.asarray(times, dtype=np.float64)
    f = np.asarray(freqs, dtype=np.float64)
    window = min(n - 1, 4 * fanout)
    if compiled:
        from soundmark.fingerprint.pair_kernel import pair_indices  # numba loads only where asked

        ai, aj = pair_indices(t, f, float(params.max_dt), float(params.max_df), fanout, window)
    else:
        ai, aj = _pair_indices(t, f, params, fanout, window)
    dt_q = np.rint(t[aj] - t[ai]).astype(np.int64)
    df_q = np.rint(f[aj] - f[ai]).astype(np.int64)
    f1_q = np.rint(f[ai]).astype(np.int64)
    anchor_t = np.rint(t[ai]).astype(np.int64)
    if jitter:
        steps = [(a, b) for a in range(-jitter, jitter + 1) for b in range(-jitter, jitter + 1)]
        dt_q = np.concatenate([dt_q + a for a, _ in steps])
        df_q = np.concatenate([df_q + b for _, b in steps])
        f1_q = np.tile(f1_q, len(steps))
        anchor_t = np.tile(anchor_t, len(steps))
    valid = (
        (dt_q >= 1)
        & (dt_q < (1 << params.dt_bits))
        & (np.abs(df_q) < (1 << (params.df_bits - 1)))
        & (f1_q >= 0)
        & (f1_q < (1 << params.freq_bits))
    )
    dt_q, df_q, f1_q = dt_q[valid], df_q[valid], f1_q[valid]
    h = (f1_q << (params.dt_bits + params.df_bits)) | ((df_q + (1 << (params.df_bits - 1))) << params.dt_bits) | dt_q
    return h.astype(np.uint32), anchor_t[valid].astype(np.int32)


def _pair_indices(
    t: np.ndarray, f: np.ndarray, params: FingerprintParams, fanout: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """``pair_kernel.pair_indices`` in NumPy: one pass over the peaks per distance in peaks."""
    n = len(t)
    idx = np.arange(n)
    pairs_i: list[np.ndarray] = []
    pairs_j: list[np.ndarray] = []
    taken = np.zeros(n, dtype=np.int32)
    for k in range(1, window + 1):
        i = idx[: n - k]
        j = i + k
        dt = t[j] - t[i]
        df = f[j] - f[i]
        ok = (dt >= 0.5) & (dt <= params.max_dt) & (np.abs(df) <= params.max_df) & (taken[i] < fanout)
        sel = i[ok]
        taken[sel] += 1
        pairs_i.append(sel)
        pairs_j.append(sel + k)
    return np.concatenate(pairs_i), np.concatenate(pairs_j)
