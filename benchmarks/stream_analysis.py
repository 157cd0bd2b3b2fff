"""CPU cost of analysing one live stream, old path against new, side by side in one process.

``benchmarks/streams_capacity.py`` measures a whole server (MP3 decoding, HTTP, the worker pool)
and its spread between runs on this machine hides a difference in the analysis. This benchmark
isolates it: one synthetic stream (catalog pieces and unknown audio, with noise) is analysed the
way the monitor does it, ``window`` seconds every ``hop`` seconds, in two ways:

- ``per-window`` (the monitor before issue 10): keep a ring buffer of the last window's samples and
  run ``query_fingerprint`` on it at every hop — with window 8 s / hop 4 s every sample goes
  through the STFT and the peak filter twice;
- ``streamed`` (now): feed 250 ms blocks to a ``QueryStream`` and cut ``window()`` every hop —
  every sample is analysed once, and only the window's peaks are hashed.

Both then match their window print against the same store (``Recognizer.recognize_print``).
CPU is ``time.process_time`` (this process, single thread), reported per stream-minute for the
analysis alone and with matching; the rounds alternate between the paths so drift hits both.

    python benchmarks/stream_analysis.py --minutes 10 --rounds 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from soundmark.catalog.models import TrackMeta
from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.extract import QueryPrint, query_fingerprint
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.query_stream import QueryStream
from soundmark.ingest import IngestItem, ingest
from soundmark.match.recognizer import Recognizer
from soundmark.store import Store

BLOCK = 0.25  # seconds per block, as a stream reader hands them over


def build_stream(params: FingerprintParams, tracks: int, minutes: float, root: Path) -> tuple[Store, np.ndarray]:
    rate = params.sample_rate
    pieces = [compose_piece(100 + i, 40.0, rate) for i in range(tracks)]
    items = []
    for i, x in enumerate(pieces):
        path = root / f"piece-{i}.wav"
        write_wav(path, x, rate)
        items.append(IngestItem(path, TrackMeta(title=f"Piece {i}", artist="Bench")))
    store = Store(root / "db", params, create=True)
    ingest(store, items, processes=1)
    rng = np.random.default_rng(7)
    parts, total = [], 0
    while total < minutes * 60 * rate:
        k = int(rng.integers(tracks + 1))
        x = compose_piece(999 + total, 20.0, rate) if k == tracks else pieces[k][: 30 * rate]
        parts.append(x)
        total += len(x)
    stream = np.concatenate(parts)[: int(minutes * 60 * rate)]
    stream = stream + rng.normal(0, 0.02, len(stream)).astype(np.float32)
    return store, stream.astype(np.float32)


def per_window(stream: np.ndarray, params: FingerprintParams, window: float, hop: float) -> list[QueryPrint]:
    rate = params.sample_rate
    win_n, hop_n, block = int(window * rate), int(hop * rate), int(BLOCK * rate)
    buf, since, out = np.zeros(0, np.float32), 0, []
    for i in range(0, len(stream), block):
        x = stream[i : i + block]
        buf = np.concatenate([buf, x])[-win_n:]
        since += len(x)
        if since >= hop_n and len(buf) >= min(win_n, 2 * hop_n):
            since = 0
            out.append(query_fingerprint(buf, params))
    return out


def streamed(stream: np.ndarray, params: FingerprintParams, window: float, hop: float) -> list[QueryPrint]:
    rate = params.sample_rate
    hop_n, block = int(hop * rate), int(BLOCK * rate)
    stage = QueryStream(params, window, hop)
    since, out = 0, []
    for i in range(0, len(stream), block):
        x = stream[i : i + block]
        stage.feed(x)
        since += len(x)
        if since >= hop_n and stage.samples >= min(int(window * rate), 2 * hop_n):
            since = 0
            out.append(stage.window().query.query_print(params))
    return out


def measure(
    path: Callable[[np.ndarray, FingerprintParams, float, float], list[QueryPrint]],
    stream: np.ndarray, params: FingerprintParams, rec: Recognizer, window: float, hop: float,
) -> tuple[float, float, list[int]]:  # fmt: skip
    t0 = time.process_time()
    prints = path(stream, params, window, hop)
    t1 = time.process_time()
    found = [m[0].track.id if (m := rec.recognize_print(qp)) else 0 for qp in prints]
    t2 = time.process_time()
    return t1 - t0, t2 - t0, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the synthetic stream")
    ap.add_argument("--tracks", type=int, default=12, help="catalog pieces (the stream plays them and unknown audio)")
    ap.add_argument("--window", type=float, default=8.0, help="seconds recognised at once (Settings default)")
    ap.add_argument("--hop", type=float, default=4.0, help="seconds between recognitions (Settings default)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both paths")
    args = ap.parse_args()
    params = FingerprintParams()
    with tempfile.TemporaryDirectory(prefix="sm-stream-analysis-") as tmp:
        store, stream = build_stream(params, args.tracks, args.minutes, Path(tmp))
        with store:
            rec = Recognizer(store)
            rows: dict[str, list[tuple[float, float]]] = {"per-window": [], "streamed": []}
            answers: dict[str, list[int]] = {}
            for _ in range(args.rounds):
                for name, path in (("per-window", per_window), ("streamed", streamed)):
                    analysis, total, found = measure(path, stream, params, rec, args.window, args.hop)
                    rows[name].append((analysis / args.minutes, total / args.minutes))
                    answers[name] = found
    same = sum(a == b for a, b in zip(answers["per-window"], answers["streamed"], strict=False))
    print(f"stream {args.minutes:g} min, window {args.window:g} s / hop {args.hop:g} s, {args.tracks} tracks")
    print("CPU seconds per stream-minute, one value per round:")
    for name, vals in rows.items():
        a = ", ".join(f"{v[0]:.3f}" for v in vals)
        t = ", ".join(f"{v[1]:.3f}" for v in vals)
        print(f"{name:<12}  analysis {a}  |  with matching {t}")
    med = {k: (float(np.median([v[0] for v in r])), float(np.median([v[1] for v in r]))) for k, r in rows.items()}
    print(
        f"median: analysis {med['per-window'][0]:.3f} -> {med['streamed'][0]:.3f} "
        f"({100 * (1 - med['streamed'][0] / med['per-window'][0]):.0f}% less), with matching "
        f"{med['per-window'][1]:.3f} -> {med['streamed'][1]:.3f} "
        f"({100 * (1 - med['streamed'][1] / med['per-window'][1]):.0f}% less); "
        f"windows naming the same track: {same}/{len(answers['streamed'])}"
    )


if __name__ == "__main__":
    main()
