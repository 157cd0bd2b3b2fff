"""Where a query's time goes through the Redis Cluster index, what ingest costs, and Redis RAM.

Usage:
  python benchmarks/redis_latency.py --url redis://127.0.0.1:7100,127.0.0.1:7101/bench \\
      [--corpus ~/benchdata/public] [--queries 120] [--rounds 3] [--keep DIR]

1. Ingests the corpus's manifest (``soundmark.ingest``, all cores) into a fresh store whose
   index is on the cluster at ``--url``; prints realtime x, and the masters' ``used_memory``
   before and after (bytes of Redis RAM per posting; replicas hold as much again).
2. Decodes and fingerprints the first ``--queries`` positive queries of ``truth.csv`` once (not
   timed), then recognizes every one ``--rounds`` times through the real ``Recognizer``, timing
   the index calls it makes (``lookup``, ``track_peaks``/``tracks_peaks``) by wrapping the
   backend's methods; prints p50/p95 of each part and of the whole ``recognize_print``.
3. Deletes the store's keys (its prefix) unless ``--keep`` names where to leave the store.

Run it on a cluster nobody else loads (scripts/servers.sh with SOUNDMARK_REDIS_PORT=7100 and
its own SOUNDMARK_SERVERS_DIR) and against the code you want (PYTHONPATH=<worktree>/src).
"""

from __future__ import annotations

import argparse
import csv
import functools
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from redis import RedisCluster
from redis.cluster import ClusterNode

import soundmark
from soundmark.audio.decode import decode
from soundmark.catalog.manifest import read_manifest
from soundmark.fingerprint.extract import query_fingerprint
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.redis_url import parse_redis_url
from soundmark.ingest import ingest, items_from_manifest
from soundmark.match.recognizer import Recognizer
from soundmark.store import Store


def _client(url: str) -> RedisCluster:
    location = parse_redis_url(url)
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])


def used_memory(url: str) -> int:
    """Sum of ``used_memory`` over the cluster's masters."""
    client = _client(url)
    try:
        return sum(int(client.get_redis_connection(n).info("memory")["used_memory"]) for n in client.get_primaries())
    finally:
        client.close()


def delete_prefix(url: str) -> int:
    prefix = parse_redis_url(url).prefix
    client = _client(url)
    deleted = 0
    try:
        for node in client.get_primaries():
            r = client.get_redis_connection(node)
            for pattern in (f"{prefix}:*", f"{{{prefix}:*"):
                batch = list(r.scan_iter(match=pattern, count=5000))
                for i in range(0, len(batch), 1000):
                    deleted += int(r.unlink(*batch[i : i + 1000]))
    finally:
        client.close()
    return deleted


class Timer:
    """Wall time of every call of the wrapped methods, per name and per query."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, obj: Any, name: str) -> None:
        inner: Callable[..., Any] | None = getattr(obj, name, None)
        if inner is None:
            return

        @functools.wraps(inner)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - t0
                self.calls[name] = self.calls.get(name, 0) + 1

        setattr(obj, name, timed)

    def take(self) -> tuple[dict[str, float], dict[str, int]]:
        out = (dict(self.spent), dict(self.calls))
        self.spent.clear()
        self.calls.clear()
        return out


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="redis://host:port[,...]/prefix of a cluster for this run")
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--queries", type=int, default=120, help="positive queries recognized (the first ones)")
    ap.add_argument("--rounds", type=int, default=3, help="times each query is recognized")
    ap.add_argument("--batch", type=int, default=64, help="tracks per ingest batch")
    ap.add_argument("--keep", type=Path, help="leave the store here (and its keys in the cluster)")
    ap.add_argument("--reuse", action="store_true", help="query the store at --keep as it is (no ingest)")
    args = ap.parse_args()
    print(f"soundmark from {Path(soundmark.__file__).parent}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="redis-latency-"))
    params = FingerprintParams()
    entries = read_manifest(args.corpus / "manifest.csv")
    mem0 = used_memory(args.url)
    try:
        with Store(root, params, create=True, index_url=None if args.reuse else args.url) as store:
            if not args.reuse:
                report = ingest(store, items_from_manifest(entries), batch_tracks=args.batch)
                postings = store.index.postings()
                mem1 = used_memory(args.url)
                print(
                    f"ingest: {len(report.added)} tracks, {report.audio_seconds / 3600:.2f} h in"
                    f" {report.wall_seconds:.1f} s = {report.realtime_factor:.1f}x realtime; {postings:,} postings;"
                    f" Redis RAM (masters) +{(mem1 - mem0) / 2**20:.1f} MiB"
                    f" = {(mem1 - mem0) / max(postings, 1):.1f} B/posting"
                )
            with open(args.corpus / "truth.csv", newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if r["title"]][: args.queries]
            prints = [query_fingerprint(decode(args.corpus / r["query"], params.sample_rate), params) for r in rows]
            rec = Recognizer(store)
            timer = Timer()
            for name in ("lookup", "track_peaks", "tracks_peaks"):
                timer.wrap(store.index, name)
            totals: list[float] = []
            parts: dict[str, list[float]] = {}
            calls: dict[str, list[int]] = {}
            right = 0
            for rnd in range(args.rounds):
                for r, qp in zip(rows, prints, strict=True):
                    t0 = time.perf_counter()
                    found = rec.recognize_print(qp)
                    totals.append((time.perf_counter() - t0) * 1000)
                    spent, n = timer.take()
                    for k, v in spent.items():
                        parts.setdefault(k, []).append(v * 1000)
                        calls.setdefault(k, []).append(n[k])
                    if rnd == 0:
                        right += bool(found) and found[0].track.meta.title in r["title"].split("|")
            print(f"queries: {len(rows)} x {args.rounds} rounds; right title {right}/{len(rows)}")
            print(f"  recognize_print  p50 {_pct(totals, 50):7.1f} ms  p95 {_pct(totals, 95):7.1f} ms")
            for k, xs in parts.items():
                print(
                    f"  {k:<15}  p50 {_pct(xs, 50):7.1f} ms  p95 {_pct(xs, 95):7.1f} ms"
                    f"  calls/query median {statistics.median(calls[k]):.0f}"
                )
    finally:
        if args.keep is None:
            print(f"deleted {delete_prefix(args.url):,} keys")
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
