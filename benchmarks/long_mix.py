"""Long-recording benchmark: build a DJ-style mix from the public corpus and scan it.

Usage: python benchmarks/long_mix.py [--hours 2] [--db DIR] [--workers 2] [--seed 1] [--keep FILE]

The mix (8 kHz mono, written as FLAC to a temp dir while it is generated, never whole in memory):
excerpts of the corpus's reference tracks (60–180 s each, in random order) back to back with
5–10 s equal-power cross-fades; every fifth track played ±4 % fast/slow (time and pitch, as a
pitch fader does); 20–40 s of talk-over babble at 5 dB SNR on every third track; after every
sixth track a 30–60 s stretch of held-out music (not in the catalog, must report nothing).

Truth for a catalog track is its audible span in the mix (fade-in start → fade-out end). Scored:
track recall (a truth entry overlapped by a reported segment of the same track), precision
(reported segments overlapping a truth entry of their track), median boundary error (|start −
truth start| and |end − truth end| over matched entries), analysis speed (× realtime).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import av
import numpy as np
from scipy.signal import resample_poly

from soundmark.audio.decode import decode

SR = 8000
CORPUS = Path.home() / "benchdata" / "public"


@dataclass
class Entry:
    kind: str  # "track" or "unknown"
    title: str
    start: float  # seconds in the mix (audible span)
    end: float
    ref_start: float
    speed: float
    talk_over: bool


def _speed(x: np.ndarray, speed: float) -> np.ndarray:
    """Play ``x`` ``speed`` times as fast (time and pitch together)."""
    if abs(speed - 1.0) < 1e-9:
        return x
    up, down = 100, round(100 * speed)
    g = gcd(up, down)
    return resample_poly(x, up // g, down // g).astype(np.float32)


def _babble(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    i = int(rng.integers(0, max(1, len(noise) - n)))
    out = noise[i : i + n]
    if len(out) < n:
        out = np.resize(noise, n)
    return out.astype(np.float32)


class FlacWriter:
    def __init__(self, path: Path, sr: int = SR):
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("flac", rate=sr, layout="mono")
        self.sr = sr
        self.pts = 0

    def write(self, x: np.ndarray) -> None:
        if not len(x):
            return
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.sr
        frame.pts = self.pts
        self.pts += pcm.shape[1]
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


def mix_pieces(corpus: Path, hours: float, seed: int) -> Iterator[tuple[Entry, np.ndarray, float]]:
    """(entry, audio at SR, cross-fade with the next piece) in mix order, ~``hours`` long."""
    rng = np.random.default_rng(seed)
    with open(corpus / "manifest.csv") as fh:
        refs = [(r["title"], corpus / r["path"]) for r in csv.DictReader(fh)]
    held = sorted((corpus / "heldout").glob("*"))
    noise = decode(corpus / "noise" / "babble.flac", SR, max_seconds=600)
    total = 0.0
    n = 0
    order: list[int] = []
    while total < hours * 3600:
        if not order:
            order = list(rng.permutation(len(refs)))
        title, path = refs[order.pop()]
        n += 1
        full = decode(path, SR)
        length = float(rng.uniform(60, 180))
        dur = len(full) / SR
        ref_start = float(rng.uniform(0, max(0.0, dur - length)))
        x = full[int(ref_start * SR) : int((ref_start + length) * SR)]
        speed = 1.0
        if n % 5 == 0:
            speed = 1.04 if rng.random() < 0.5 else 0.96
        x = _speed(x, speed)
        talk = n % 3 == 0
        if talk and len(x) > 50 * SR:
            seg = int(rng.uniform(20, 40) * SR)
            a = int(rng.uniform(5 * SR, len(x) - seg - 5 * SR))
            music = x[a : a + seg]
            b = _babble(noise, seg, rng)
            pm = float(np.mean(music**2)) + 1e-12
            pn = float(np.mean(b**2)) + 1e-12
            x = x.copy()
            x[a : a + seg] += b * np.sqrt(pm / pn / 10 ** (5 / 10))
        entry = Entry("track", title, 0.0, 0.0, ref_start, speed, talk)
        yield entry, x, float(rng.uniform(5, 10))
        total += len(x) / SR
        if n % 6 == 0 and held:
            hp = held[int(rng.integers(len(held)))]
            h = decode(hp, SR)
            hl = float(rng.uniform(30, 60))
            h0 = float(rng.uniform(0, max(0.0, len(h) / SR - hl)))
            hx = h[int(h0 * SR) : int((h0 + hl) * SR)]
            yield Entry("unknown", hp.stem, 0.0, 0.0, h0, 1.0, False), hx, float(rng.uniform(5, 10))
            total += len(hx) / SR


def build_mix(out: Path, corpus: Path, hours: float, seed: int) -> list[Entry]:
    """Write the mix to ``out`` (FLAC) and return its truth."""
    writer = FlacWriter(out)
    entries: list[Entry] = []
    tail = np.zeros(0, dtype=np.float32)  # the previous piece's fade-out, not yet written
    pos = 0  # samples written so far
    for entry, x, fade_next in mix_pieces(corpus, hours, seed):
        x = x.astype(np.float32).copy()
        fin = min(len(tail), len(x) // 3)
        fout = min(int(fade_next * SR), len(x) // 3)
        if fin:
            x[:fin] *= np.sin(np.linspace(0, np.pi / 2, fin, dtype=np.float32))
        x[len(x) - fout :] *= np.cos(np.linspace(0, np.pi / 2, fout, dtype=np.float32))
        writer.write(tail[: len(tail) - fin])
        pos += len(tail) - fin
        x[:fin] += tail[len(tail) - fin :]
        entry.start = pos / SR
        entry.end = (pos + len(x)) / SR
        writer.write(x[: len(x) - fout])
        pos += len(x) - fout
        tail = x[len(x) - fout :]
        entries.append(entry)
    writer.write(tail)
    writer.close()
    return entries


def score(entries: list[Entry], segments: list[dict[str, object]]) -> dict[str, float]:
    truth = [e for e in entries if e.kind == "track"]
    found = 0
    errors: list[float] = []
    used = set()
    for e in truth:
        best = None
        for i, s in enumerate(segments):
            if s["title"] != e.title:
                continue
            ov = min(e.end, float(s["end"])) - max(e.start, float(s["start"]))  # type: ignore[arg-type]
            if ov > 0 and (best is None or ov > best[0]):
                best = (ov, i)
        if best is not None:
            found += 1
            s = segments[best[1]]
            used.add(best[1])
            errors += [abs(float(s["start"]) - e.start), abs(float(s["end"]) - e.end)]  # type: ignore[arg-type]
    correct = 0
    for s in segments:
        if any(
            e.title == s["title"] and min(e.end, float(s["end"])) - max(e.start, float(s["start"])) > 0  # type: ignore[arg-type]
            for e in truth
        ):
            correct += 1
    return {
        "tracks": len(truth),
        "unknown_stretches": sum(1 for e in entries if e.kind == "unknown"),
        "recall": found / max(1, len(truth)),
        "precision": correct / max(1, len(segments)),
        "reported": len(segments),
        "median_boundary_error_s": float(np.median(errors)) if errors else float("nan"),
        "p90_boundary_error_s": float(np.percentile(errors, 90)) if errors else float("nan"),
    }


def ensure_store(db: Path, corpus: Path) -> None:
    if (db / "catalog.sqlite").exists():
        return
    exe = Path(sys.executable).parent / "soundmark"
    subprocess.run([str(exe), "add", "--db", str(db), "--manifest", str(corpus / "manifest.csv")], check=True)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--hours", type=float, default=2.0)
    ap.add_argument("--db", type=Path, default=Path(tempfile.gettempdir()) / "soundmark-bench-db")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="keep the mix (FLAC) and its truth here")
    ap.add_argument(
        "--mix", type=Path, default=None, help="scan a mix kept earlier with --keep instead of building one"
    )
    ap.add_argument("--set", action="append", default=[], help="ScanSettings override, e.g. hop_seconds=4")
    ap.add_argument("--verbose", action="store_true", help="print every truth entry and segment")
    args = ap.parse_args()

    from soundmark.match.scan import ScanSettings, open_scan_store, scan

    ensure_store(args.db, args.corpus)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if args.mix:
            path = args.mix
            entries = [Entry(**e) for e in json.loads(path.with_suffix(".truth.json").read_text())]
        else:
            path = args.keep or Path(tmp) / "mix.flac"
            entries = build_mix(path, args.corpus, args.hours, args.seed)
        build_s = time.perf_counter() - t0
        load_before = load_average()
        overrides = {k: type(getattr(ScanSettings(), k))(v) for k, v in (x.split("=") for x in args.set)}
        res = scan(path, args.db, ScanSettings(**overrides), workers=args.workers)
        load_after = load_average()
        with open_scan_store(args.db, (1.0,)) as store:
            titles = {t.id: t.meta.title for t in store.catalog.list_tracks(limit=100000)}
        segs = [{**s.to_dict(), "title": titles.get(s.track_id)} for s in res.segments]
        report = score(entries, segs)
        report.update(
            {
                "hours": round(res.duration / 3600, 3),
                "realtime_x": round(res.realtime_factor, 1),
                "scan_wall_s": round(res.wall_seconds, 1),
                "windows": res.windows,
                "workers": args.workers,
                "build_s": round(build_s, 1),
                "load_before": load_before,
                "load_after": load_after,
                "cpus": os.cpu_count(),
            }
        )
        if args.verbose:
            for e in entries:
                near = [g for g in segs if g["title"] == e.title and min(e.end, g["end"]) > max(e.start, g["start"])]
                got = " | ".join(
                    f"{g['start']:.1f}-{g['end']:.1f} ({g['start'] - e.start:+.1f}/{g['end'] - e.end:+.1f})"
                    f" ref {g['ref_start']:.1f} w{g['windows']}"
                    for g in near
                )
                print(
                    f"{e.kind:7s} {e.title} {e.start:8.1f}-{e.end:8.1f} ref {e.ref_start:6.1f} x{e.speed} "
                    f"talk={int(e.talk_over)} -> {got or '-'}"
                )
            for g in segs:
                if not any(e.title == g["title"] and min(e.end, g["end"]) > max(e.start, g["start"]) for e in entries):
                    print("FALSE", g)
        if args.keep:
            args.keep.with_suffix(".truth.json").write_text(json.dumps([e.__dict__ for e in entries], indent=1))
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
