"""API latency while ``soundmark add`` writes to the same store from another process.

A real server (``serve --workers 1``) on a copy of a small store, and a real add run of generated
tracks (tests/api/contention.py) on the same ``--db``; meanwhile one client asks /healthz and
/metrics in turn and another an authenticated recognize of a catalog clip, as fast as they are
answered. Two seconds into the add, another process also holds the write lock for
``--hold-seconds`` (an add's commit or compaction on a large catalog or a slow disk does; here the
add's own commits take well under a second). Prints p50 / p99 / max per kind, the add's duration
and the requests that went wrong.

Run the code before a change side by side with ``PYTHONPATH=<worktree>/src`` (the server and the
add are started with this interpreter and environment):

    python benchmarks/write_contention.py --bases 6 --per-base 8 --batch 16
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "api"), str(ROOT / "tests")]

from contention import (  # noqa: E402
    Recorder,
    hold_write_lock,
    percentile,
    probe_loop,
    recognize_loop,
    start_add,
    wav_bytes,
    write_tracks,
)
from live_server import start_server, stop_server  # noqa: E402

import soundmark  # noqa: E402
from soundmark.catalog.models import TrackMeta  # noqa: E402
from soundmark.demo import compose_piece, write_wav  # noqa: E402
from soundmark.fingerprint.params import FingerprintParams  # noqa: E402
from soundmark.ingest import IngestItem, ingest  # noqa: E402
from soundmark.store import Store  # noqa: E402

RATE = 22050
SEEDS = (11, 22, 33, 44)


def build(root: Path) -> tuple[Path, bytes, str]:
    """A store of four pieces; a 6 s clip of the first and its title."""
    db = root / "db"
    items = []
    clip = b""
    for seed in SEEDS:
        x = compose_piece(seed, 40.0, RATE)
        path = root / f"piece-{seed}.wav"
        write_wav(path, x, RATE)
        items.append(IngestItem(path, TrackMeta(title=f"Piece {seed}", artist="Bench")))
        if not clip:
            clip = wav_bytes(x[5 * RATE : 11 * RATE], RATE)
    with Store(db, FingerprintParams(), create=True) as store:
        ingest(store, items, processes=1)
    return db, clip, f"Piece {SEEDS[0]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bases", type=int, default=6, help="composed pieces (each gives --per-base tracks)")
    ap.add_argument("--per-base", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16, help="add's --batch: tracks per commit")
    ap.add_argument("--hold-seconds", type=float, default=5.0, help="another process's write transaction (0: none)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="soundmark-contention-") as tmp:
        root = Path(tmp)
        db, clip, title = build(root)
        audio_seconds = write_tracks(root / "audio", bases=args.bases, per_base=args.per_base)
        server = start_server(db, root / "server.log")
        rec, stop = Recorder(), threading.Event()
        try:
            token = server.token("bench", "--limit-per-month", "10000000")
            with httpx.Client(timeout=120) as warm:
                warm.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip)})
            clients = [httpx.Client(timeout=120) for _ in range(2)]
            add = start_add(db, root / "audio", root / "add.log", batch=args.batch)
            started = time.monotonic()
            threads = [
                threading.Thread(target=probe_loop, args=(clients[0], server.url, rec, stop)),
                threading.Thread(target=recognize_loop, args=(clients[1], server.url, token, clip, title, rec, stop)),
            ]
            for t in threads:
                t.start()
            if args.hold_seconds > 0:
                time.sleep(2.0)
                hold_write_lock(db, args.hold_seconds).communicate()
            add.wait()
            add_seconds = time.monotonic() - started
            stop.set()
            for t in threads:
                t.join()
            for c in clients:
                c.close()
        finally:
            stop.set()
            stop_server(server)
        add_ok = add.returncode == 0
        shutil.rmtree(root / "audio", ignore_errors=True)

    out: dict[str, object] = {
        "label": args.label,
        "code": str(Path(soundmark.__file__).resolve().parent.parent),
        "add_seconds": round(add_seconds, 1),
        "add_ok": add_ok,
        "audio_hours": round(audio_seconds / 3600, 2),
        "batch": args.batch,
        "hold_seconds": args.hold_seconds,
        "wrong": sum(not a.ok for a in rec.answers),
    }
    for kind in ("healthz", "metrics", "recognize"):
        secs = [a.seconds for a in rec.of(kind)]
        out[kind] = {
            "n": len(secs),
            "p50_ms": round(percentile(secs, 50) * 1000, 1),
            "p99_ms": round(percentile(secs, 99) * 1000, 1),
            "max_ms": round(max(secs, default=float("nan")) * 1000, 1),
        }
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.label or 'run'}: add {out['add_seconds']} s ({out['audio_hours']} h of audio, batch {args.batch}, "
          f"lock held {args.hold_seconds:g} s, "
          f"ok={add_ok}), wrong answers {out['wrong']}, code {out['code']}")  # fmt: skip
    for kind in ("healthz", "metrics", "recognize"):
        k = out[kind]
        assert isinstance(k, dict)
        n, p50, p99, worst = k["n"], k["p50_ms"], k["p99_ms"], k["max_ms"]
        print(f"  {kind:9s} n={n:5d}  p50={p50:8.1f} ms  p99={p99:8.1f} ms  max={worst:8.1f} ms")


if __name__ == "__main__":
    main()
