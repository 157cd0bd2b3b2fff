"""Quick parameter sweeps of query-side settings on the public corpus (no re-ingest needed).

Usage: python benchmarks/sweep.py --db STORE --kinds noise_snr0,noise_snr-5,negative \
           --set query_peaks_per_second=60 --set query_fanout=12 [--min-votes 3]

Runs the recognizer in-process on the chosen kinds' queries and prints, per score threshold,
accuracy per kind, wrong answers and false positives — the numbers a change must move. Only
query-time fields of FingerprintParams can be swept this way (index fields need a new store).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from pathlib import Path

import numpy as np

from soundmark.audio.decode import decode
from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--kinds", default="noise_snr0,noise_snr-5,reverb_noise,negative")
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE for a query-time parameter")
    ap.add_argument("--min-votes", type=int, default=MatchSettings().min_votes)
    ap.add_argument("--candidates", type=int, default=MatchSettings().candidates)
    ap.add_argument("--thresholds", default="4,5,6,7")
    args = ap.parse_args()
    params = FingerprintParams()
    for item in args.set:
        key, value = item.split("=", 1)
        params = dataclasses.replace(params, **{key: type(getattr(params, key))(value)})
    store = Store(args.db, params)
    rec = Recognizer(store, MatchSettings(min_score=-1e9, min_votes=args.min_votes, candidates=args.candidates))
    titles = {t.id: t.meta.title for t in store.catalog.list_tracks(100000)}
    kinds = args.kinds.split(",")
    with open(args.corpus / "truth.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] in kinds]
    outcomes = []  # (kind, correct?, score) of the best answer
    times = []
    for r in rows:
        x = decode(args.corpus / r["query"], params.sample_rate, max_seconds=20)
        t0 = time.perf_counter()
        scored = rec.score(x)
        times.append(time.perf_counter() - t0)
        if not scored:
            outcomes.append((r["kind"], None, -1e9))
            continue
        best = scored[0]
        truth = set(r["title"].split("|")) if r["title"] else set()
        outcomes.append((r["kind"], titles[best.candidate.track_id] in truth, best.score))
    print(f"{len(rows)} queries, match p50 {np.median(times) * 1000:.1f} ms (decode excluded)")
    for th in [float(t) for t in args.thresholds.split(",")]:
        per = {}
        wrong = fp = 0
        for k in kinds:
            ks = [o for o in outcomes if o[0] == k]
            if k == "negative":
                fp = sum(1 for o in ks if o[2] >= th)
                continue
            per[k] = round(100 * sum(1 for o in ks if o[1] and o[2] >= th) / len(ks), 1)
            wrong += sum(1 for o in ks if o[1] is False and o[2] >= th)
        print(f"th={th:<4} {per} wrong={wrong} fp={fp}")


if __name__ == "__main__":
    main()
