"""Compaction before and after the streaming merge, side by side: peak RSS, time, write amplification.

Usage: python benchmarks/compaction.py [--postings 30000000] [--before-commit 9591107] [--work DIR]

1. A synthetic index of ``--postings`` postings in segments of 64 tracks (one ingest batch each),
   with hash statistics like real music's (5 % of postings on 4,096 common hashes, the rest spread
   over the 22-bit space; 25,000 postings a track, times over ~4 min) and 1 % of tracks removed,
   is written by the code of ``--before-commit`` (a git worktree; layout-1 segments, which both
   codes read).
2. Copies of it are compacted whole, each in a child process of its own (peak RSS =
   ``ru_maxrss``): by the in-memory compaction of ``--before-commit``, and by this tree's
   streaming merge (its inputs are layout 1 here, so it also counts their postings first). The
   same data written by this tree (layout 2) is compacted too. Lookups of the results are compared.
3. The merge policy's write amplification over 100 equal adds (postings written by adds and
   merges / postings added) for the old rule (everything when more than 8 segments) and the
   tiered policy, and the segment count each leaves.
4. Lookup speed of the two value codes (uint32 vs uint64, index/segment_layout.py) on the same
   postings, and the decode cost of the rejected frame-base code.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TRACK_POSTINGS = 25_000
BATCH_TRACKS = 64

_BUILD = """
import sys, numpy as np
from pathlib import Path
from soundmark.catalog.sqlite import Catalog
from soundmark.index.base import TrackPostings
from soundmark.index.segments import SegmentIndex
root, total, per_track, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
root.mkdir(parents=True)
catalog = Catalog(root)
index = SegmentIndex(root, catalog)
index.refresh(force=True)
rng = np.random.default_rng(0)
hot = rng.integers(0, 1 << 22, 4096)
n_tracks = total // per_track
for first in range(1, n_tracks + 1, batch):
    tracks = []
    for tid in range(first, min(n_tracks + 1, first + batch)):
        h = np.where(rng.random(per_track) < 0.05, hot[rng.integers(0, 4096, per_track)],
                     rng.integers(0, 1 << 22, per_track)).astype(np.uint32)
        t = rng.integers(0, 7500, per_track).astype(np.int32)
        p = np.stack([np.sort(rng.integers(0, 7500, 600)), rng.integers(0, 1024, 600)], axis=1).astype(np.int32)
        tracks.append(TrackPostings(tid, h, t, p))
    index.add(tracks)
with catalog.transaction():
    index.remove(range(1, n_tracks + 1, 100))
print(len(index.names))
"""

_COMPACT = """
import json, resource, sys, time, numpy as np
from pathlib import Path
from soundmark.catalog.sqlite import Catalog
from soundmark.index.segments import SegmentIndex
root = Path(sys.argv[1])
catalog = Catalog(root)
index = SegmentIndex(root, catalog)
index.refresh(force=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t = time.perf_counter()
merged = index.compact(1)
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rng = np.random.default_rng(1)
q = np.unique(rng.integers(0, 1 << 22, 20000)).astype(np.uint32)
hits = index.lookup(q, 1 << 30)
order = np.lexsort((hits.times, hits.track_ids, hits.hash_pos))
digest = int(np.bitwise_xor.reduce((hits.hash_pos[order] * 1000003 + hits.track_ids[order] * 7919 + hits.times[order])
                                    * np.arange(1, len(order) + 1)))
print(json.dumps({"merged": merged, "wall_s": wall, "rss_before": before, "rss_peak": peak,
                  "postings": index.postings(), "hits": len(order), "digest": digest}))
"""


def run(code: str, src: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr)
    return out.stdout.strip()


def write_amplification(adds: int, add_postings: int) -> dict[str, dict[str, float]]:
    from soundmark.index.policy import SegmentSize, next_merge

    old_sizes: list[int] = []
    old_written = 0
    segs: list[SegmentSize] = []
    new_written = 0
    for i in range(adds):
        old_sizes.append(add_postings)
        old_written += add_postings
        if len(old_sizes) > 8:  # the old ingest rule: COMPACT_ABOVE_SEGMENTS = 8, then compact()
            old_written += sum(old_sizes)
            old_sizes = [sum(old_sizes)]
        segs.append(SegmentSize(f"a{i}", add_postings))
        new_written += add_postings
        while group := next_merge(segs):
            merged = sum(s.postings for s in segs if s.name in group)
            segs = [s for s in segs if s.name not in group] + [SegmentSize(f"m{i}-{len(segs)}", merged)]
            new_written += merged
    total = adds * add_postings
    return {
        "old (all when > 8)": {"amplification": old_written / total, "segments": len(old_sizes)},
        "tiered": {"amplification": new_written / total, "segments": len(segs)},
    }


def value_codes(work: Path) -> dict[str, float]:
    from soundmark.catalog.sqlite import Catalog
    from soundmark.index.base import TrackPostings
    from soundmark.index.segments import SegmentIndex

    rng = np.random.default_rng(2)
    out: dict[str, float] = {}
    for label, long_time in (("u32", 7000), ("u64", 675_000)):
        root = work / f"codes-{label}"
        root.mkdir()
        catalog = Catalog(root)
        index = SegmentIndex(root, catalog)
        batch = [
            TrackPostings(
                tid,
                rng.integers(0, 1 << 22, 500).astype(np.uint32),
                rng.integers(0, long_time if tid == 1 else 7000, 500).astype(np.int32),
                np.zeros((0, 2), dtype=np.int32),
            )
            for tid in range(1, 5001)
        ]
        index.add(batch)
        (name,) = index.names
        size = sum((root / "segments" / name / f).stat().st_size for f in ("keys.npy", "vals.npy"))
        queries = [np.unique(rng.integers(0, 1 << 22, 1500)).astype(np.uint32) for _ in range(300)]
        index.lookup(queries[0], 1 << 30)
        t = time.perf_counter()
        for q in queries:
            index.lookup(q, 1 << 30)
        out[f"{label} ms/lookup"] = (time.perf_counter() - t) / len(queries) * 1e3
        out[f"{label} bytes/posting"] = size / index.postings()
        catalog.close()
    # The rejected code: frames numbered across the segment, decoded by a binary search per hit.
    n_tracks, n_hits = 100_000, 200_000
    lens = rng.integers(3000, 15000, n_tracks)
    base = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    local = rng.integers(0, n_tracks, n_hits)
    times = (rng.random(n_hits) * lens[local]).astype(np.int64)
    shift, framed = (local << 14) | times, base[local] + times
    ids = np.arange(n_tracks, dtype=np.int64)
    t = time.perf_counter()
    for _ in range(20):
        _ = ids[shift >> 14], shift & ((1 << 14) - 1)
    out["shift decode ms/200k hits"] = (time.perf_counter() - t) / 20 * 1e3
    t = time.perf_counter()
    for _ in range(20):
        loc = np.searchsorted(base, framed, side="right") - 1
        _ = ids[loc], framed - base[loc]
    out["frame-base decode ms/200k hits"] = (time.perf_counter() - t) / 20 * 1e3
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postings", type=int, default=30_000_000, help="postings of the synthetic index")
    ap.add_argument("--before-commit", default="9591107", help="the commit whose compaction is 'before'")
    ap.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="compaction-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    before_tree = work / "before-tree"
    if not before_tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before_tree), args.before_commit],
                       check=True, capture_output=True)  # fmt: skip
    report: dict[str, object] = {"postings": args.postings, "cpu_count": os.cpu_count()}
    try:
        t = time.perf_counter()
        segs = run(
            _BUILD, before_tree / "src", str(work / "v1"), str(args.postings), str(TRACK_POSTINGS), str(BATCH_TRACKS)
        )
        run(_BUILD, REPO / "src", str(work / "v2"), str(args.postings), str(TRACK_POSTINGS), str(BATCH_TRACKS))
        report["segments_before_compaction"] = int(segs)
        report["build_s"] = time.perf_counter() - t
        for label, src, data in (
            ("before: in-memory (layout 1 in)", before_tree / "src", "v1"),
            ("after: streaming (layout 1 in)", REPO / "src", "v1"),
            ("after: streaming (layout 2 in)", REPO / "src", "v2"),
        ):
            copy = work / f"copy-{data}"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(work / data, copy)
            report[label] = json.loads(run(_COMPACT, src, str(copy)))
            shutil.rmtree(copy)
        report["write amplification, 100 adds"] = write_amplification(100, BATCH_TRACKS * TRACK_POSTINGS)
        report["value codes"] = value_codes(work)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)], check=False)
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["this process peak RSS"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
