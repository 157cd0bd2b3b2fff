"""How recognition behaves as the catalog grows: 78 → 1k → 10k (→ 100k) tracks (issue 11).

Usage:
    .venv/bin/python benchmarks/scale.py [--corpus ~/benchdata/public] [--work ~/benchdata/scale]
        [--sizes 1000,10000] [--index-url redis://host:port,...] [--unknown 1000] [--out FILE]
    .venv/bin/python benchmarks/scale.py --sizes 1000,10000,100000     # the 100k run: a quiet machine,
        ~25 GB of disk for the store plus as much again while compaction rewrites it (see the README
        of the issue's closing note for the memory it needs today)

The store under ``--work`` grows in place: the public corpus's references are ingested for real
(decode + fingerprint, ``soundmark.ingest``), then each size adds distractors up to that many
tracks. A distractor is a real reference's stored peak list, pitch-shifted 3-6 semitones (out of
both warp grids' reach), tempo-changed, optionally time-reversed and rotated, re-hashed with soundmark's own hashing
(``scale_distractors.py`` says how and why no public query can match one). Distractors go
through the store's real write path: ``Store.writer()``, ``find_duplicate`` (as ingest does),
``StoreWriter.commit`` in batches of ``Settings.batch_tracks``, and then the compaction ingest
would run (``StoreWriter.merge_by_policy`` where the engine has it, else ingest's rule of
compacting above ``COMPACT_ABOVE_SEGMENTS``). Each phase runs in a child process of its own, so its
peak RSS (``ru_maxrss``) is its own; ``--mem-limit-gb`` caps each child's private memory
(RLIMIT_DATA), so a phase that would need more fails cleanly instead of starving the machine.
A size already measured is skipped unless ``--remeasure``; results are kept in ``--work``.

Queries at every size: the corpus's 840 public queries (``truth.csv``: 780 positive in 13 kinds,
60 negative) and ``--unknown`` excerpts (3/5/10 s) cut from the corpus's held-out tracks (never
in the catalog), clean, with pink/babble/effects noise at 15-25 dB or 5-10 dB SNR, or sped ±3 %.
Latency is one ``Recognizer.recognize_print`` call on decoded samples (fingerprint, the whole
search: first grid, the budget's retry, the wide grid; lookup, vote, verify, catalog read), one
query at a time in one process: no decoding, no HTTP. ``--first-search`` answers from the first
search alone (``score_print``), as every run before session 8 of 2026-12-03 did.

Columns of the table:
  tracks, hours      catalog size (references + distractors) and its audio-equivalent hours
  postings, segs     stored postings and live index segments when queried
  acc %              title accuracy over the 780 positive public queries (run.py's rule: the
                     returned title is the true one); Δ78 = points against the 78-track store
  wrong (→x)         positive queries answered with a wrong title (of which naming a distractor)
  x-acc/max          positive queries where a distractor *of the true track* reached the
                     acceptance threshold (should be 0: the transforms must not match), and the
                     best score any such distractor got as a verified candidate (chance: < 0)
  FP unk             unknown excerpts given any answer / unknown excerpts (of which → distractor)
  FP neg             the corpus's 60 negative queries given any answer
  p50, p95 ms        latency over all public and unknown queries (after one warm-up query)
  met/read           postings per distinct query hash: stored (under the stop-word cap) / read
                     within the query's budget (FingerprintParams.query_postings_per_hash), what
                     the vote has to sort
  q RSS MB           the query process: peak RSS (VmHWM) / private (RssAnon) at the end
  ingest MB, cmp MB  peak RSS of the process that added this step's tracks / that compacted
  B/track            store directory bytes (index + catalog; index bytes alone with a cluster)
  trk/s              tracks committed per second by this step's ingest (distractors: write path
                     with dedupe, no decoding; 78: real files decoded), ×RT the audio-equivalent
  cmp s              compaction wall seconds
The log-log slope of p50 against catalog size (least squares over sizes ≥ 1,000) closes the output.
Timings move a lot when other jobs share the cores: run it on an otherwise idle machine. Where
others edit src/ in the same checkout, run a commit's snapshot instead of the working tree:
    git archive HEAD src | tar -x -C /tmp/sm-head && PYTHONPATH=/tmp/sm-head/src .venv/bin/python \
        benchmarks/scale.py ...           (the results JSON records which soundmark was imported)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import inspect
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import soundmark

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scale_distractors beside this file

from scale_distractors import content_hash, distractor_fingerprint, transform_for

from soundmark import ingest as ingest_module
from soundmark.audio.decode import decode
from soundmark.catalog.manifest import read_manifest
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE
from soundmark.fingerprint.extract import query_fingerprint
from soundmark.ingest import ingest, items_from_manifest
from soundmark.match.dedupe import find_duplicate
from soundmark.match.recognizer import MatchSettings, Recognizer, query_budget
from soundmark.settings import Settings
from soundmark.store import NewTrack, Store, recorded_params

SCRIPT = Path(__file__).resolve()
DISTRACTOR_ARTIST = "distractor"  # the artist of every distractor track; album = its source's title
KINDS = (
    "clean", "noise_snr10", "noise_snr5", "noise_snr0", "noise_snr-5", "reverb_noise", "gsm", "mp3_32k",
    "speaker", "speed_+3", "speed_-3", "tempo_+5", "pitch_+1",
)  # fmt: skip


# --- clips: decoded once, read one at a time (so they add nothing to a process's RSS) ----------
class Clips:
    """Float32 clips at the engine rate in one raw file, with a JSON index of names and spans."""

    def __init__(self, path: Path):
        self.path = path
        self.index: list[dict[str, object]] = json.loads(path.with_suffix(".json").read_text())

    @staticmethod
    def write(path: Path, clips: list[tuple[dict[str, object], np.ndarray]]) -> None:
        index, pos = [], 0
        with open(path, "wb") as fh:
            for meta, x in clips:
                fh.write(np.asarray(x, dtype=np.float32).tobytes())
                index.append({**meta, "start": pos, "n": len(x)})
                pos += len(x)
        path.with_suffix(".json").write_text(json.dumps(index))

    def read(self, i: int) -> np.ndarray:
        e = self.index[i]
        return np.fromfile(self.path, dtype=np.float32, count=int(e["n"]), offset=4 * int(e["start"]))  # type: ignore[call-overload]


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    return np.fft.irfft(spec, n)


def _unknown_clips(corpus: Path, n: int, seed: int, sr: int) -> list[tuple[dict[str, object], np.ndarray]]:
    """``n`` degraded 3/5/10 s excerpts of the held-out tracks (never in the catalog)."""
    from scipy.signal import resample_poly

    tracks = [decode(p, sr) for p in sorted((corpus / "heldout").iterdir())]
    beds = [decode(corpus / "noise" / f, sr) for f in ("babble.flac", "sfx.flac") if (corpus / "noise" / f).exists()]
    rng = np.random.default_rng(seed)
    out: list[tuple[dict[str, object], np.ndarray]] = []
    while len(out) < n:
        i = len(out)
        ti = int(rng.integers(len(tracks)))
        x, secs = tracks[ti], (3, 5, 10)[i % 3]
        start = int(rng.integers(0, max(1, len(x) - secs * sr)))
        clip = x[start : start + secs * sr].astype(np.float64)
        if len(clip) < sr or np.sqrt(np.mean(clip**2)) < 1e-3:
            continue  # (mostly) silent: not a meaningful negative
        kind = ("clean", "noise_15_25dB", "noise_5_10dB", "speed_3pct")[(i // 3) % 4]
        if kind.startswith("noise"):
            which = int(rng.integers(len(beds) + 1))
            if which == len(beds):
                noise = _pink(rng, len(clip))
            else:
                bed = beds[which]
                at = int(rng.integers(0, len(bed) - len(clip)))
                noise = bed[at : at + len(clip)].astype(np.float64)
            snr = rng.uniform(15, 25) if kind == "noise_15_25dB" else rng.uniform(5, 10)
            noise *= np.sqrt(np.mean(clip**2) / max(np.mean(noise**2), 1e-12) / 10 ** (snr / 10))
            clip = clip + noise
        elif kind == "speed_3pct":
            clip = resample_poly(clip, 100, 103) if rng.random() < 0.5 else resample_poly(clip, 103, 100)
        meta = {"name": f"u{i:05d}", "kind": kind, "track": f"n{ti + 1:04d}", "seconds": secs}
        out.append((meta, clip.astype(np.float32)))
    return out


def phase_prepare(args: argparse.Namespace) -> dict[str, object]:
    sr = recorded_params(args.db).sample_rate
    with open(args.corpus / "truth.csv", newline="") as fh:
        truth = list(csv.DictReader(fh))
    public = [({"name": t["query"], "kind": t["kind"], "title": t["title"]}, decode(args.corpus / t["query"], sr))
              for t in truth]  # fmt: skip
    Clips.write(args.work / "public.f32", public)
    Clips.write(args.work / "unknown.f32", _unknown_clips(args.corpus, args.unknown, args.seed, sr))
    return {"public": len(public), "unknown": args.unknown}


# --- the store -------------------------------------------------------------------------------
def open_store(args: argparse.Namespace) -> Store:
    """The store under ``--work``; with ``--index-url`` its index in that cluster (when this
    soundmark's Store accepts an index URL: the cluster backend is being built)."""
    params = recorded_params(args.db)
    if args.postings_per_hash is not None:  # a query-only field: any store opens with it
        params = dataclasses.replace(params, query_postings_per_hash=args.postings_per_hash)
    if args.retry_postings_per_hash is not None:
        params = dataclasses.replace(params, query_postings_per_hash_retry=args.retry_postings_per_hash)
    if not args.index_url:
        return Store(args.db, params, create=True)
    if "index_url" not in inspect.signature(Store).parameters:
        raise SystemExit("--index-url: this soundmark's Store has no cluster backend yet (no index_url parameter)")
    return Store(args.db, params, create=True, index_url=args.index_url)  # type: ignore[call-arg]


def phase_refs(args: argparse.Namespace) -> dict[str, object]:
    """The corpus's references, ingested as `soundmark add --manifest` would."""
    settings = Settings()
    with open_store(args) as store:
        items = items_from_manifest(read_manifest(args.corpus / "manifest.csv"))
        rep = ingest(store, items, processes=settings.ingest_processes or 2, batch_tracks=settings.batch_tracks)
        if rep.failures:
            raise SystemExit(f"reference ingest failed: {rep.failures[:3]}")
        titles = {str(it.path): it.meta.title for it in items}
        refs = [{"id": tid, "title": titles[path]} for tid, path in sorted(rep.added)]
        (args.work / "refs.json").write_text(json.dumps(refs))
        return {"added": len(rep.added), "audio_s": rep.audio_seconds, "wall_s": rep.wall_seconds, "dedupe": 0}


def phase_grow(args: argparse.Namespace) -> dict[str, object]:
    """Distractors up to ``args.size`` tracks, through the writer in batches, dedupe as ingest."""
    from rich.progress import Progress

    settings = Settings()
    refs = json.loads((args.work / "refs.json").read_text())
    state_path = args.work / "distractors.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {"next": 0}
    first = int(state["next"])  # number of the first distractor this step draws
    t0 = time.perf_counter()
    added = dup = 0
    audio = gen_s = dedupe_s = commit_s = 0.0
    with open_store(args) as store, store.writer() as writer, Progress(transient=True) as bar:
        params = store.params
        sources = [store.index.track_peaks(int(r["id"])) for r in refs]
        have = store.catalog.totals()[0]
        task = bar.add_task(f"distractors → {args.size}", total=max(0, args.size - have))
        batch: list[NewTrack] = []
        seen: set[str] = set()
        while have + added + len(batch) < args.size:
            k = first + added + len(batch) + dup
            a = time.perf_counter()
            t = transform_for(k, len(sources), params, args.seed)
            fp = distractor_fingerprint(sources[t.source], t, params, seed=args.seed * 1_000_003 + k)
            ch = content_hash(fp)
            meta = TrackMeta(title=f"x{k:06d}", artist=DISTRACTOR_ARTIST, album=str(refs[t.source]["title"]),
                             label=t.describe())  # fmt: skip
            dur = (int(fp.peaks[:, 0].max()) + 1) * params.frame_seconds if len(fp.peaks) else 0.0
            track = NewTrack(meta, dur, None, ch, fp.hashes, fp.times, fp.peaks)
            b = time.perf_counter()
            is_dup = ch in seen or (
                args.dedupe and (store.catalog.find_by_hash(ch) is not None or find_duplicate(store, track) is not None)
            )
            c = time.perf_counter()
            gen_s, dedupe_s = gen_s + b - a, dedupe_s + c - b
            if is_dup:
                dup += 1
                continue
            seen.add(ch)
            batch.append(track)
            if len(batch) >= settings.batch_tracks or have + added + len(batch) >= args.size:
                writer.commit(batch)
                commit_s += time.perf_counter() - c
                added += len(batch)
                audio += sum(x.duration for x in batch)
                bar.advance(task, len(batch))
                batch, seen = [], set()
                state["next"] = k + 1
                state_path.write_text(json.dumps(state))
    wall = time.perf_counter() - t0
    return {"added": added, "audio_s": audio, "wall_s": wall, "dedupe": dup,
            "generate_s": gen_s, "dedupe_s": dedupe_s, "commit_s": commit_s}  # fmt: skip


def phase_compact(args: argparse.Namespace) -> dict[str, object]:
    """The compaction an add would end with: the engine's merge policy (index/policy.py) where it
    has one, else ingest.py's rule (compact all above COMPACT_ABOVE_SEGMENTS segments)."""
    t0 = time.perf_counter()
    with open_store(args) as store, store.writer() as writer:
        before = store.index.stats().segments
        if hasattr(writer, "merge_by_policy"):
            rewritten = writer.merge_by_policy()
        else:
            above = getattr(ingest_module, "COMPACT_ABOVE_SEGMENTS", 8)
            rewritten = writer.compact() if before > above else 0
        after = store.index.stats().segments
    return {"segments_before": before, "segments_after": after, "rewritten": rewritten,
            "wall_s": time.perf_counter() - t0}  # fmt: skip


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[key] = int(rest.split()[0]) * 1024
    return out


def phase_query(args: argparse.Namespace) -> dict[str, object]:
    """Every public query and unknown excerpt, one Recognizer call each; per-query outcomes."""
    from rich.progress import Progress

    settings = Settings()
    public, unknown = Clips(args.work / "public.f32"), Clips(args.work / "unknown.f32")
    with open_store(args) as store:
        rec = Recognizer(store, MatchSettings(min_score=settings.min_score, min_votes=settings.min_votes))
        p = store.params
        mem_open = _proc_status()
        info = store.info()
        warm = time.perf_counter()
        rec.recognize(public.read(0))
        warm_ms = 1000 * (time.perf_counter() - warm)
        rows = []
        todo = [(public, i) for i in range(len(public.index))] + [(unknown, i) for i in range(len(unknown.index))]
        with Progress(transient=True) as bar:
            task = bar.add_task(f"queries at {info.tracks} tracks", total=len(todo))
            for clips, i in todo:
                samples, meta = clips.read(i), clips.index[i]
                t0 = time.perf_counter()
                qp = query_fingerprint(samples, p)
                if args.first_search:
                    store.refresh()
                    scored = rec.score_print(qp)
                    accepted = [x for x in scored if x.score >= settings.min_score]
                    answer = (accepted[0].candidate.track_id, accepted[0].score) if accepted else None
                    ms = 1000 * (time.perf_counter() - t0)
                else:
                    matches = rec.recognize_print(qp)
                    ms = 1000 * (time.perf_counter() - t0)
                    answer = (matches[0].track.id, matches[0].score) if matches else None
                    scored = rec.score_print(qp)  # (not timed) the verified candidates, for x-acc
                ids = [x.candidate.track_id for x in scored] + ([answer[0]] if answer else [])
                tracks = store.catalog.get_tracks(ids)
                uniq = np.unique(np.concatenate([w.hashes for w in qp.warps])) if qp.warps else np.zeros(0, np.uint32)
                met = len(store.index.lookup(uniq, p.max_postings_per_hash).hash_pos) if len(uniq) else 0
                budget = query_budget(p, len(uniq))
                read = len(store.index.lookup(uniq, p.max_postings_per_hash, budget).hash_pos) if len(uniq) else 0
                best = tracks.get(answer[0]) if answer else None
                truth = {t for t in str(meta.get("title") or "").split("|") if t}
                x_cand = [x.score for x in scored
                          if (tr := tracks.get(x.candidate.track_id)) is not None
                          and tr.meta.artist == DISTRACTOR_ARTIST and tr.meta.album in truth]  # fmt: skip
                rows.append({
                    "name": meta["name"], "kind": meta["kind"], "set": "public" if clips is public else "unknown",
                    "truth": sorted(truth), "ms": ms, "hashes": len(uniq), "met": met, "read": read,
                    "answer": best.meta.title if best else None,
                    "answer_distractor": bool(best and best.meta.artist == DISTRACTOR_ARTIST),
                    "score": answer[1] if answer else None,
                    "x_cand_best": max(x_cand) if x_cand else None,
                })  # fmt: skip
                bar.advance(task)
        return {"tracks": info.tracks, "hours": info.hours, "postings": info.postings, "segments": info.segments,
                "store_bytes": info.bytes_on_disk, "index_bytes": store.index.stats().bytes, "warm_ms": warm_ms,
                "mem_open": mem_open, "mem_end": _proc_status(), "index_url": args.index_url,
                "postings_per_hash": p.query_postings_per_hash, "retry_per_hash": p.query_postings_per_hash_retry,
                "path": "first search" if args.first_search else "recognize", "rows": rows}  # fmt: skip


PHASES = {"prepare": phase_prepare, "refs": phase_refs, "grow": phase_grow, "compact": phase_compact,
          "query": phase_query}  # fmt: skip


# --- the parent: one child process per phase ------------------------------------------------
def run_child(args: argparse.Namespace, phase: str, size: int) -> dict[str, object]:
    """Run ``phase`` in a child process; its JSON result plus its wall time and peak RSS."""
    out = args.work / f"phase-{phase}-{size}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(SCRIPT), "--phase", phase, "--size", str(size), "--corpus", str(args.corpus),
           "--work", str(args.work), "--seed", str(args.seed), "--unknown", str(args.unknown),
           "--mem-limit-gb", str(args.mem_limit_gb)] + ([] if args.dedupe else ["--no-dedupe"])  # fmt: skip
    cmd += ["--index-url", args.index_url] if args.index_url else []
    cmd += ["--postings-per-hash", str(args.postings_per_hash)] if args.postings_per_hash is not None else []
    if args.retry_postings_per_hash is not None:
        cmd += ["--retry-postings-per-hash", str(args.retry_postings_per_hash)]
    cmd += ["--first-search"] if args.first_search else []
    limit = int(args.mem_limit_gb * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, preexec_fn=cap)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    base = {"phase": phase, "wall_s_outer": time.perf_counter() - t0, "peak_rss": usage.ru_maxrss * 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime, "rc": proc.returncode}  # fmt: skip
    if proc.returncode != 0 or not out.exists():
        return {**base, "failed": True}
    return {**base, **json.loads(out.read_text())}


def measure(args: argparse.Namespace, size: int) -> dict[str, object]:
    """Grow the store to ``size`` (78: the references), compact, query; the size's figures."""
    step: dict[str, object] = {"size": size}
    if size == 0:
        step["ingest"] = run_child(args, "refs", size)
    else:
        step["ingest"] = run_child(args, "grow", size)
        if step["ingest"].get("failed"):  # type: ignore[union-attr]
            return step
        step["compact"] = run_child(args, "compact", size)
    step["query"] = run_child(args, "query", size)
    return step


def summarise(step: dict[str, object]) -> dict[str, object]:
    """The table's figures of one measured size."""
    q = step["query"]
    assert isinstance(q, dict)
    if q.get("failed"):
        return {"tracks": None}
    rows = q["rows"]
    pos = [r for r in rows if r["set"] == "public" and r["truth"]]
    neg = [r for r in rows if r["set"] == "public" and not r["truth"]]
    unk = [r for r in rows if r["set"] == "unknown"]
    ok = [r for r in pos if r["answer"] in r["truth"]]
    wrong = [r for r in pos if r["answer"] is not None and r["answer"] not in r["truth"]]
    ms = np.array([r["ms"] for r in rows])
    met = sum(r["met"] for r in rows) / max(1, sum(r["hashes"] for r in rows))
    read = sum(r.get("read", r["met"]) for r in rows) / max(1, sum(r["hashes"] for r in rows))
    ing, cmp_ = step["ingest"], step.get("compact") or {}
    assert isinstance(ing, dict) and isinstance(cmp_, dict)
    per_kind = {}
    for kind in KINDS:
        ks = [r for r in pos if r["kind"] == kind]
        per_kind[kind] = 100 * sum(r["answer"] in r["truth"] for r in ks) / len(ks) if ks else None
    wall = float(ing.get("wall_s") or 0)
    return {
        "tracks": q["tracks"], "hours": q["hours"], "postings": q["postings"], "segments": q["segments"],
        "acc": 100 * len(ok) / max(1, len(pos)), "wrong": len(wrong),
        "wrong_distractor": sum(r["answer_distractor"] for r in wrong),
        "x_accepted": sum((r["x_cand_best"] or -1e9) >= MatchSettings().min_score for r in pos),
        "x_best": max((r["x_cand_best"] for r in pos if r["x_cand_best"] is not None), default=None),
        "fp_unknown": sum(r["answer"] is not None for r in unk), "unknown": len(unk),
        "fp_unknown_distractor": sum(r["answer_distractor"] for r in unk),
        "fp_negative": sum(r["answer"] is not None for r in neg), "negative": len(neg),
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "met_per_hash": met,
        "read_per_hash": read, "postings_per_hash": q.get("postings_per_hash"),
        "query_hwm": q["mem_end"]["VmHWM"], "query_anon": q["mem_end"]["RssAnon"],
        "ingest_peak_rss": ing.get("peak_rss"), "compact_peak_rss": cmp_.get("peak_rss"),
        "compact_s": cmp_.get("wall_s"), "compact_failed": bool(cmp_.get("failed")),
        "compact_rewritten": cmp_.get("rewritten"),
        "bytes_per_track": q["store_bytes" if not q.get("index_url") else "index_bytes"] / max(1, q["tracks"]),
        "ingest_tracks_per_s": float(ing.get("added") or 0) / wall if wall else None,
        "ingest_x_realtime": float(ing.get("audio_s") or 0) / wall if wall else None,
        "ingest_dedupe_hits": ing.get("dedupe"), "per_kind": per_kind,
    }  # fmt: skip


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x)."""
    pts = [(math.log(x), math.log(y)) for x, y in points if x and y]
    if len(pts) < 2:
        return None
    xs, ys = np.array([a for a, _ in pts]), np.array([b for _, b in pts])
    return float(np.polyfit(xs, ys, 1)[0])


def _num(x: object) -> str:
    return f"{float(x):.1f}" if isinstance(x, (int, float)) else "-"


def _mb(x: object) -> str:
    return f"{float(x) / 2**20:.0f}" if isinstance(x, (int, float)) else "-"


def print_tables(summaries: list[dict[str, object]]) -> None:
    base = next((s for s in summaries if s["tracks"] and s["tracks"] < 1000), None)  # type: ignore[operator]
    head = ("tracks", "hours", "postings", "segs", "acc %", "Δ78", "wrong(→x)", "x-acc/max", "FP unk", "FP neg",
            "p50", "p95", "met/read", "q RSS MB", "ingest MB", "cmp MB", "B/track", "trk/s (×RT)", "cmp s")  # fmt: skip
    lines = [head]
    for s in summaries:
        if not s["tracks"]:
            continue
        d = f"{s['acc'] - base['acc']:+.1f}" if base else "-"  # type: ignore[operator]
        fpu = f"{s['fp_unknown']}/{s['unknown']} ({s['fp_unknown_distractor']})"
        cmp_mb = "FAILED" if s["compact_failed"] else _mb(s["compact_peak_rss"])
        tps = f"{s['ingest_tracks_per_s']:.1f} ({s['ingest_x_realtime']:.0f}×)" if s["ingest_tracks_per_s"] else "-"
        lines.append((
            f"{s['tracks']:,}", f"{s['hours']:.0f}", f"{s['postings'] / 1e6:.1f}M", str(s["segments"]),
            f"{s['acc']:.1f}", d, f"{s['wrong']}({s['wrong_distractor']})",
            f"{s['x_accepted']}/{_num(s['x_best'])}", fpu,
            f"{s['fp_negative']}/{s['negative']}", f"{s['p50_ms']:.1f}", f"{s['p95_ms']:.1f}",
            f"{s['met_per_hash']:.1f}/{s.get('read_per_hash', s['met_per_hash']):.1f}",
            f"{_mb(s['query_hwm'])}/{_mb(s['query_anon'])}", _mb(s["ingest_peak_rss"]),
            cmp_mb, f"{s['bytes_per_track']:,.0f}", tps,
            f"{s['compact_s']:.0f}" if s["compact_rewritten"] else "-",
        ))  # fmt: skip
    widths = [max(len(str(r[i])) for r in lines) for i in range(len(head))]
    for r in lines:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))
    print()
    kinds_head = ("kind", *[f"{s['tracks']:,}" for s in summaries if s["tracks"]])
    print("  ".join(f"{h:>12}" for h in kinds_head))
    for kind in KINDS:
        vals = [s["per_kind"][kind] for s in summaries if s["tracks"]]  # type: ignore[index]
        print("  ".join([f"{kind:>12}", *[f"{v:>12.1f}" if v is not None else f"{'-':>12}" for v in vals]]))


def parse_args(argv: list[str]) -> argparse.Namespace:
    home = Path.home() / "benchdata"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=home / "public", help="the public bench corpus (built)")
    ap.add_argument("--work", type=Path, default=home / "scale", help="where the growing store and results live")
    ap.add_argument("--sizes", default="1000,10000", help="catalog sizes, comma-separated (add 100000 for 100k)")
    ap.add_argument("--index-url", default="", help="the fingerprint index in this cluster (default: embedded)")
    ap.add_argument("--unknown", type=int, default=1000, help="unknown excerpts for the false-positive count")
    ap.add_argument("--seed", type=int, default=11, help="seed of the distractors and the unknown excerpts")
    ap.add_argument("--mem-limit-gb", type=float, default=14.0, help="private-memory cap of each child (RLIMIT_DATA)")
    ap.add_argument("--remeasure", action="store_true", help="query sizes measured before again")
    ap.add_argument(
        "--no-dedupe",
        dest="dedupe",
        action="store_false",
        help="skip ingest's duplicate check for distractors (its cost grows with the segment count)",
    )
    ap.add_argument(
        "--postings-per-hash",
        type=float,
        default=None,
        help="query with this FingerprintParams.query_postings_per_hash (0: no budget; default: the engine's)",
    )
    ap.add_argument(
        "--retry-postings-per-hash",
        type=float,
        default=None,
        help="the retry's budget, FingerprintParams.query_postings_per_hash_retry (0: no retry; default: the engine's)",
    )
    ap.add_argument(
        "--first-search",
        action="store_true",
        help="answer from the first search alone (Recognizer.score_print, as runs before 2026-12-03 "
        "session 8 did), not the whole recognize path (retry and wide grid included)",
    )
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default: WORK/scale-results.json)")
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)  # a child's job
    ap.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.corpus, args.work = args.corpus.expanduser(), args.work.expanduser()
    args.db = args.work / "store"
    try:
        args.size_list = sorted({int(x) for x in args.sizes.split(",") if x.strip()})
    except ValueError:
        ap.error(f"--sizes: comma-separated integers, not {args.sizes!r}")
    if args.unknown < 1 or any(s < 100 for s in args.size_list):
        ap.error("--unknown must be ≥ 1 and every size ≥ 100")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.phase:
        result = PHASES[args.phase](args)
        (args.work / f"phase-{args.phase}-{args.size}.json").write_text(json.dumps(result))
        return 0
    for need in ("manifest.csv", "truth.csv", "heldout"):
        if not (args.corpus / need).exists():
            raise SystemExit(f"{args.corpus}: no {need} (build the corpus with the bench's build_corpus.py first)")
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.work / "unknown.json").exists() or len(Clips(args.work / "unknown.f32").index) != args.unknown:
        print(f"decoding the public queries and cutting {args.unknown} unknown excerpts ...", flush=True)
        if run_child(args, "prepare", 0).get("failed"):
            raise SystemExit("preparing the queries failed")
    steps: dict[str, dict[str, object]] = {}
    saved = args.work / "steps.json"
    if saved.exists():
        steps = json.loads(saved.read_text())
    refs_file = args.work / "refs.json"
    refs = len(json.loads(refs_file.read_text())) if refs_file.exists() else 0  # 0 until the references are in
    for size in [0, *args.size_list]:
        if "query" in steps.get(str(size), {}) and not args.remeasure:
            continue
        have = _tracks(args)
        if have > (size or refs):
            print(f"the store already holds {have} tracks > {size or refs}: skipping that size", file=sys.stderr)
            continue
        print(f"--- size {size or 'references'} ---", flush=True)
        if (size == 0 and have) or (size and have == size and "ingest" in steps.get(str(size), {})):
            # Built before (--remeasure): query again, keep the figures of its ingest and compaction.
            step: dict[str, object] = {k: v for k, v in steps.get(str(size), {"size": size}).items() if k != "query"}
            step.setdefault("ingest", {})
            step["query"] = run_child(args, "query", size)
        else:
            step = measure(args, size)
        steps[str(size)] = step
        saved.write_text(json.dumps(steps))
    summaries = [summarise(steps[k]) for k in sorted(steps, key=int) if "query" in steps[k]]
    print_tables(summaries)
    big = [(s["tracks"], s["p50_ms"]) for s in summaries if s["tracks"] and s["tracks"] >= 1000]  # type: ignore[operator]
    every = [(s["tracks"], s["p50_ms"]) for s in summaries if s["tracks"]]
    sl, sl_all = slope(big), slope(every)  # type: ignore[arg-type]
    print(f"\nlog-log slope of p50 vs catalog size: {sl:.2f} over sizes ≥ 1,000" if sl is not None else "")
    print(f"log-log slope including the 78-track store: {sl_all:.2f}" if sl_all is not None else "")
    out = args.out or args.work / "scale-results.json"
    out.write_text(json.dumps({"summaries": summaries, "slope_p50": sl, "slope_p50_all": sl_all,
                               "host": {"cpus": os.cpu_count(), "load": os.getloadavg()},
                               "soundmark": str(Path(soundmark.__file__).parent), "steps": steps},
                              default=str))  # fmt: skip
    print(f"results: {out}")
    return 0


def _tracks(args: argparse.Namespace) -> int:
    if not (args.db / CATALOG_FILE).exists():
        return 0
    with open_store(args) as store:
        return store.catalog.totals()[0]


if __name__ == "__main__":
    sys.exit(main())
