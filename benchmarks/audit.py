"""`soundmark audit` over a folder of N generated tracks with planted duplicates.

Usage: python benchmarks/audit.py [--tracks 1000] [--seconds 180] [--planted 100] [--processes 2]
                                  [--cache DIR] [--folder DIR]

Generates (once, into --cache; later runs reuse the files) N - planted distinct composed pieces
(8 kHz mono WAV) and `planted` files derived from some of them, cycling through four kinds:
an MP3 re-encode, a remaster (-4 dB, EQ, soft compression), a 60 s radio edit, and a mix (the
whole piece followed by 30 s of the next piece: one `contains` and one `overlap` pair). Then
times one audit of the folder in this process (fingerprinting in --processes workers) and
reports wall time split into fingerprinting and comparison, peak RSS (this process and,
separately, the largest worker) beside the bytes of the posting table, what the comparison read
(the postings an all-with-all lookup would meet per hash, the seed postings read, the pairs
recounted), and the recall and precision of the planted pairs. ``--folder DIR`` audits an
existing folder instead (no truth: it prints what was found).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import av
import numpy as np
from scipy.signal import butter, sosfilt

from soundmark.audit.render import as_text
from soundmark.audit.run import AuditOptions, audit_folder
from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.params import FingerprintParams

RATE = 8000
KINDS = ("mp3", "remaster", "edit", "mix")


def _mp3(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        st = out.add_stream("libmp3lame", rate=RATE)
        st.layout, st.bit_rate = "mono", 32_000
        for pos in range(0, len(x), 1152):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, pos : pos + 1152]), format="fltp",
                                            layout="mono")  # fmt: skip
            fr.sample_rate, fr.pts = RATE, pos
            for pk in st.encode(fr):
                out.mux(pk)
        for pk in st.encode(None):
            out.mux(pk)
    return buf.getvalue()


def _remaster(x: np.ndarray) -> np.ndarray:
    low = sosfilt(butter(2, 200, "lowpass", fs=RATE, output="sos"), x)
    y = sosfilt(butter(4, 3000, "lowpass", fs=RATE, output="sos"), x + low)
    y = np.tanh(2.0 * y) / 2.0
    return (10 ** (-4 / 20) * y / np.max(np.abs(y))).astype(np.float32)


def _make(job: tuple[Path, str, int, int, float]) -> None:
    path, kind, seed, other, seconds = job
    if path.exists():
        return
    x = compose_piece(seed, seconds, RATE)
    tmp = path.with_name(path.name + ".part")
    if kind == "piece":
        write_wav(tmp, x, RATE)
    elif kind == "mp3":
        tmp.write_bytes(_mp3(x))
    elif kind == "remaster":
        write_wav(tmp, _remaster(x), RATE)
    elif kind == "edit":
        a = int(min(30.0, seconds / 4) * RATE)
        write_wav(tmp, x[a : a + int(60 * RATE)], RATE)
    else:  # mix: the whole piece, then 30 s of the next one
        write_wav(tmp, np.concatenate([x, compose_piece(other, 30.0, RATE)]), RATE)
    tmp.rename(path)


def build(folder: Path, tracks: int, planted: int, seconds: float, processes: int) -> set[frozenset[str]]:
    """The folder's files (made where missing) and the planted pairs, by file name."""
    folder.mkdir(parents=True, exist_ok=True)
    pieces = tracks - planted
    jobs = [(folder / f"p{i:05d}.wav", "piece", 1000 + i, 0, seconds) for i in range(pieces)]
    truth: set[frozenset[str]] = set()
    for k in range(planted):
        kind, src = KINDS[k % len(KINDS)], (k * 7) % (pieces - 1)
        name = f"d{k:05d}-{kind}-of-p{src:05d}" + (".mp3" if kind == "mp3" else ".wav")
        jobs.append((folder / name, kind, 1000 + src, 1000 + src + 1, seconds))
        truth.add(frozenset({name, f"p{src:05d}.wav"}))
        if kind == "mix":
            truth.add(frozenset({name, f"p{src + 1:05d}.wav"}))
    todo = [j for j in jobs if not j[0].exists()]
    if todo:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(processes) as pool:
            list(pool.map(_make, todo, chunksize=4))
        print(f"generated {len(todo)} files in {time.perf_counter() - t0:.0f} s")
    # Derived files of one source are also copies of each other: count those pairs as planted too.
    by_src: dict[str, set[str]] = {}
    for pair in truth:
        for name in pair:
            if name.startswith("d"):
                src = next(iter(pair - {name}))
                by_src.setdefault(src, set()).add(name)
    for names in by_src.values():
        truth |= {frozenset({a, b}) for a in names for b in names if a < b}
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=1000, help="files in the folder, planted ones included")
    ap.add_argument("--seconds", type=float, default=180.0, help="length of each generated piece")
    ap.add_argument("--planted", type=int, default=100, help="files derived from other files")
    ap.add_argument("--processes", type=int, default=2, help="fingerprinting workers (and generators)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "soundmark-bench" / "audit")
    ap.add_argument("--folder", type=Path, default=None, help="audit this folder instead (no truth)")
    ap.add_argument("--min-overlap", type=float, default=10.0)
    ap.add_argument("--max-postings", type=int, default=None, help="stop-word cap [default: the matcher's]")
    defaults = AuditOptions()
    ap.add_argument("--seed-postings", type=float, default=defaults.seed_postings,
                    help="postings read per hash of a file to seed its candidates")  # fmt: skip
    ap.add_argument("--seed-share", type=float, default=defaults.seed_share,
                    help="share of a shortest overlap's seeds at one offset that makes a candidate")  # fmt: skip
    args = ap.parse_args()
    if args.folder is None:
        folder = args.cache / f"n{args.tracks}-s{int(args.seconds)}-p{args.planted}"
        truth = build(folder, args.tracks, args.planted, args.seconds, args.processes)
    else:
        folder, truth = args.folder, set()
    t0 = time.perf_counter()
    report = audit_folder(
        [folder],
        FingerprintParams(),
        AuditOptions(args.min_overlap, args.processes, max_postings_per_hash=args.max_postings,
                     seed_postings=args.seed_postings, seed_share=args.seed_share),
    )  # fmt: skip
    wall = time.perf_counter() - t0
    names = {f.key: Path(f.name).name for f in report.files}
    found = {frozenset({names[p.a], names[p.b]}) for p in report.pairs}
    result = {
        "folder": str(folder), "files": len(report.files), "failures": len(report.failures),
        "audio_hours": round(report.audio_seconds / 3600, 2), "wall_seconds": round(wall, 1),
        "fingerprint_seconds": round(report.stats.read_seconds, 1),
        "compare_seconds": round(report.stats.compare_seconds, 1),
        "postings": report.stats.postings, "table_mb": round(report.stats.table_bytes / 2**20),
        "hits_per_hash": round(report.stats.hits_per_hash, 1),
        "seed_hits_per_file": round(report.stats.seed_hits / max(1, len(report.files))),
        "recounted_pairs": report.stats.candidates, "recount_hits": report.stats.recount_hits,
        "seed_postings": args.seed_postings, "seed_share": args.seed_share,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "processes": args.processes, "cpus": os.cpu_count(), "groups": len(report.groups), "pairs": len(found),
    }  # fmt: skip
    if truth:
        hit = found & truth
        result["planted_pairs"] = len(truth)
        result["recall"] = round(len(hit) / len(truth), 4)
        result["precision"] = round(len(hit) / len(found), 4) if found else 1.0
        result["missed"] = sorted(sorted(p) for p in truth - found)[:10]
        result["unexpected"] = sorted(sorted(p) for p in found - truth)[:10]
    else:
        print(as_text(report))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
