"""Measure candidate index engines on soundmark's own postings: sorted mmap segments vs LMDB.

Usage: python benchmarks/index_engines.py --db STORE [--queries 300]

Takes every posting of an existing store (e.g. the one the public benchmark builds) and, for
each engine, measures bulk ingest speed, bytes on disk per posting, and the latency of batch
lookups of the hashes of real query-like windows (10 s of one track's hashes). LMDB is tried in
the two layouts INDEX-ENGINES.md describes: a packed value per hash, and dupsort with 4-byte
values. Needs `pip install lmdb` (not a runtime dependency).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.segments import SegmentIndex
from soundmark.store import Store


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file())


def load_postings(store: Store) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # This benchmark measures the segment files themselves, so it opens that backend directly.
    index = SegmentIndex(store.root, store.catalog)
    index.refresh(force=True)
    keys, tracks, times = [], [], []
    for name in index.names:
        for tp in index.read_postings(name, np.zeros(0, dtype=np.int64)):
            keys.append(tp.hashes)
            tracks.append(np.full(len(tp.hashes), tp.track_id, dtype=np.uint32))
            times.append(tp.times.astype(np.uint32))
    return np.concatenate(keys), np.concatenate(tracks), np.concatenate(times)


def query_batches(keys: np.ndarray, tracks: np.ndarray, times: np.ndarray, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    frames = int(10 / FingerprintParams().frame_seconds)
    for _ in range(n):
        i = rng.integers(len(keys))
        sel = (tracks == tracks[i]) & (times >= times[i]) & (times < times[i] + frames)
        out.append(np.unique(keys[sel]))
    return out


def timed(fn, batches):  # type: ignore[no-untyped-def]
    lat = []
    for b in batches:
        t = time.perf_counter()
        fn(b)
        lat.append((time.perf_counter() - t) * 1000)
    return np.percentile(lat, 50), np.percentile(lat, 95)


def bench_segments(root: Path, keys, tracks, times, batches):  # type: ignore[no-untyped-def]
    from soundmark.catalog.sqlite import Catalog
    from soundmark.index.base import TrackPostings

    root.mkdir(parents=True, exist_ok=True)
    idx = SegmentIndex(root, Catalog(root))  # the manifest lives in the store's catalog file
    t = time.perf_counter()
    by_track = []
    order = np.argsort(tracks, kind="stable")
    bounds = np.flatnonzero(np.diff(tracks[order])) + 1
    for sel in np.split(order, bounds):
        by_track.append(TrackPostings(int(tracks[sel[0]]), keys[sel], times[sel].astype(np.int32),
                                      np.zeros((0, 2), dtype=np.int32)))  # fmt: skip
    written = idx.write(by_track)
    ingest = len(keys) / (time.perf_counter() - t)
    idx.load([part.name for part in written.parts], [])
    p50, p95 = timed(lambda b: idx.lookup(b, 10**9), batches)
    return ingest, dir_bytes(root) / len(keys), p50, p95


def bench_lmdb(root: Path, keys, tracks, times, batches, dupsort: bool):  # type: ignore[no-untyped-def]
    import lmdb

    env = lmdb.open(str(root), map_size=1 << 34, max_dbs=1, writemap=True, sync=False)
    db = env.open_db(b"p", dupsort=dupsort, dupfixed=dupsort, integerdup=False)
    vals = ((tracks.astype(np.uint64) << np.uint64(22)) | times).astype(np.uint32)  # 10-bit track, 22-bit time
    order = np.argsort(keys, kind="stable")
    k_sorted, v_sorted = keys[order], vals[order]
    t = time.perf_counter()
    with env.begin(write=True, db=db) as txn:
        if dupsort:
            cur = txn.cursor()
            pairs = zip(k_sorted.tolist(), v_sorted.tolist(), strict=True)
            items = ((k.to_bytes(4, "big"), v.to_bytes(4, "big")) for k, v in pairs)
            cur.putmulti(items, dupdata=True, append=False)
        else:
            starts = np.flatnonzero(np.concatenate([[True], k_sorted[1:] != k_sorted[:-1]]))
            ends = np.append(starts[1:], len(k_sorted))
            for s, e in zip(starts, ends, strict=False):
                txn.put(int(k_sorted[s]).to_bytes(4, "big"), v_sorted[s:e].tobytes())
    env.sync()
    ingest = len(keys) / (time.perf_counter() - t)

    def lookup(batch: np.ndarray) -> int:
        n = 0
        with env.begin(db=db) as txn:
            cur = txn.cursor()
            for k in batch.tolist():
                kb = k.to_bytes(4, "big")
                if dupsort:
                    if cur.set_key(kb):
                        n += len(list(cur.iternext_dup()))
                else:
                    v = txn.get(kb)
                    if v is not None:
                        n += len(np.frombuffer(v, dtype=np.uint32))
        return n

    p50, p95 = timed(lookup, batches)
    used = env.info()["last_pgno"] * env.stat()["psize"]
    env.close()
    return ingest, used / len(keys), p50, p95


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="an existing soundmark store to read postings from")
    ap.add_argument("--queries", type=int, default=300, help="lookup batches to time")
    args = ap.parse_args()
    with Store(args.db, FingerprintParams()) as store:
        keys, tracks, times = load_postings(store)
    batches = query_batches(keys, tracks, times, args.queries)
    mean_batch = int(np.mean([len(b) for b in batches]))
    print(f"{len(keys):,} postings, {len(batches)} lookup batches of ~{mean_batch} hashes")
    print(f"{'engine':<28}{'ingest postings/s':>20}{'bytes/posting':>15}{'p50 ms':>9}{'p95 ms':>9}")
    tmp = Path(tempfile.mkdtemp(prefix="idxbench-"))
    try:
        rows = [("segments (sorted mmap)", bench_segments(tmp / "seg", keys, tracks, times, batches))]
        for dup in (False, True):
            d = tmp / f"lmdb-{dup}"
            os.makedirs(d)
            rows.append((f"lmdb {'dupsort' if dup else 'packed'}", bench_lmdb(d, keys, tracks, times, batches, dup)))
        for name, (ing, bpp, p50, p95) in rows:
            print(f"{name:<28}{ing:>20,.0f}{bpp:>15.1f}{p50:>9.2f}{p95:>9.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
