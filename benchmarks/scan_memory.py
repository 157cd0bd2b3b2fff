"""Peak memory of `soundmark scan` on long inputs: it must not grow with the recording's length.

Usage: python benchmarks/scan_memory.py [--hours 1 4] [--db DIR] [--workers 2]

Each input is generated on the fly (long_mix.py's DJ mix of the public corpus, written as FLAC
to a temp dir), then `soundmark scan --json` runs on it in a subprocess while its process tree
(the parent and its worker processes) is sampled every 0.1 s from /proc: reported are the peak
RSS of the parent alone, of the largest worker, and of the whole tree at once (RSS summed, which
counts shared libraries once per process, and PSS summed, which counts them once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from long_mix import CORPUS, build_mix, ensure_store, load_average

PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return 0


def _pss(pid: int) -> int:
    """Proportional set size: shared pages (libraries, the mapped index) split between processes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(cmd: list[str]) -> dict[str, float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    peak_parent = peak_worker = peak_tree = peak_pss = 0
    t0 = time.perf_counter()
    while proc.poll() is None:
        kids = _children(proc.pid)
        parent = _rss(proc.pid)
        workers = [_rss(k) for k in kids]
        peak_parent = max(peak_parent, parent)
        peak_worker = max([peak_worker, *workers])
        peak_tree = max(peak_tree, parent + sum(workers))
        peak_pss = max(peak_pss, _pss(proc.pid) + sum(_pss(k) for k in kids))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else b""
    if proc.returncode != 0:
        raise RuntimeError(f"scan failed ({proc.returncode})")
    body = json.loads(out)
    mb = 1024 * 1024
    return {
        "audio_hours": round(body["duration"] / 3600, 2),
        "tracks_found": len(body["tracks"]),
        "wall_s": round(wall, 1),
        "realtime_x": round(body["duration"] / wall, 1),
        "peak_rss_parent_mb": round(peak_parent / mb, 1),
        "peak_rss_worker_mb": round(peak_worker / mb, 1),
        "peak_rss_tree_mb": round(peak_tree / mb, 1),
        "peak_pss_tree_mb": round(peak_pss / mb, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--hours", type=float, nargs="+", default=[1.0, 4.0])
    ap.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "soundmark-bench-db")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    ensure_store(args.db, args.corpus)
    exe = str(Path(sys.executable).parent / "soundmark")
    for hours in args.hours:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "long.flac"
            build_mix(path, args.corpus, hours, seed=int(hours * 10))
            size_mb = path.stat().st_size / (1024 * 1024)
            load = load_average()
            cmd = [exe, "scan", "--db", str(args.db), "--workers", str(args.workers), "--json", "--no-progress",
                   str(path)]  # fmt: skip
            report = {"hours": hours, "file_mb": round(size_mb, 1), **measure(cmd), "load_before": load}
            print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
