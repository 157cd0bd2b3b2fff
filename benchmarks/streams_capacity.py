"""How many live 128 kbps streams one machine monitors in real time, and how fast songs are reported.

Everything runs on loopback: a Python Icecast-like server (tests/streams/radio.py ``VirtualRadio``)
plays one looped playlist of synthetic catalog pieces and unknown audio on N mounts, each shifted in
time; a soundmark server (``serve --workers 2``) monitors all N with ``callbacks=before`` and POSTs
to a local receiver. For every song start inside the measured span we check it was reported, once,
and take the latency = callback arrival − the song's start on air.

    python benchmarks/streams_capacity.py --streams 50 --seconds 150
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "streams"), str(ROOT / "tests" / "api")]

from live_server import start_server, stop_server  # noqa: E402
from radio import RATE, CallbackReceiver, Item, Schedule, VirtualRadio  # noqa: E402

from soundmark.catalog.models import TrackMeta  # noqa: E402
from soundmark.demo import compose_piece, write_wav  # noqa: E402
from soundmark.fingerprint.params import FingerprintParams  # noqa: E402
from soundmark.ingest import IngestItem, ingest  # noqa: E402
from soundmark.store import Store  # noqa: E402

SEEDS = (101, 202, 303, 404, 505, 606)
SONG = 30.0  # seconds of each piece played
PIECE = 40.0


def cpu_seconds(pid: int) -> float:
    """user+system CPU of ``pid`` and its children (the recognition workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if entry.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def build(root: Path) -> tuple[Path, dict[int, np.ndarray]]:
    db = root / "db"
    pieces = {s: compose_piece(s, PIECE, RATE) for s in SEEDS}
    items = []
    for s, x in pieces.items():
        path = root / f"piece-{s}.wav"
        write_wav(path, x, RATE)
        items.append(IngestItem(path, TrackMeta(title=f"Piece {s}", artist="Bench")))
    with Store(db, FingerprintParams(), create=True) as store:
        ingest(store, items, processes=2)
    return db, pieces


def run(n_streams: int, seconds: float, warmup: float) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="sm-streams-"))
    try:
        db, pieces = build(root)
        unknown = compose_piece(999, PIECE, RATE)
        playlist = [Item(f"Piece {s}", pieces[s][: int(SONG * RATE)]) for s in SEEDS[:3]]
        playlist += [Item("", unknown[: int(15 * RATE)])]
        playlist += [Item(f"Piece {s}", pieces[s][: int(SONG * RATE)]) for s in SEEDS[3:]]
        schedule = Schedule(playlist)
        radio = VirtualRadio(schedule, shift=schedule.seconds / max(1, n_streams) * 0.999)
        receiver = CallbackReceiver()
        receiver.up()
        env = {"SOUNDMARK_STREAMS_PER_TOKEN": str(n_streams + 10), "SOUNDMARK_MAX_INFLIGHT": "256"}
        server = start_server(db, root / "server.log", "--allow-private-urls", "--workers", "2", env=env)
        try:
            token = server.token("bench")
            with httpx.Client(timeout=30) as http:
                http.post(f"{server.url}/setCallbackUrl/", data={"api_token": token, "url": receiver.url})
                for k in range(n_streams):
                    body = {"api_token": token, "url": f"{radio.url}/{k}.mp3", "radio_id": k, "callbacks": "before"}
                    assert http.post(f"{server.url}/addStream/", data=body).json()["status"] == "success"
            t_start = time.time()
            load0 = os.getloadavg()
            time.sleep(warmup)
            cpu0, t0 = cpu_seconds(server.proc.pid), time.time()
            time.sleep(seconds)
            cpu1, t1 = cpu_seconds(server.proc.pid), time.time()
            load1 = os.getloadavg()
            time.sleep(20)  # let the last songs of the span be reported
        finally:
            stop_server(server)
            radio.close()
            receiver.down()
        reports: dict[int, list[tuple[str, float]]] = {}
        for body, at in zip(receiver.snapshot(), receiver.times, strict=False):
            result = body.get("result")
            if isinstance(result, dict):
                reports.setdefault(int(result["radio_id"]), []).append((result["results"][0]["title"], at))
        expected = found = duplicates = false_reports = 0
        latencies: list[float] = []
        for k in range(n_streams):
            starts = radio.song_starts(k, t0, t1 - 15)
            got = reports.get(k, [])
            for label, t in starts:
                if not label:
                    continue
                expected += 1
                hits = [at for title, at in got if title == label and t - 5 <= at <= t + 60]
                if hits:
                    found += 1
                    latencies.append(min(hits) - t)
                    duplicates += len(hits) - 1
            played = {label for label, _ in radio.song_starts(k, t_start - 60, t1 + 30)}
            false_reports += sum(1 for title, _ in got if title not in played)
        latencies.sort()
        return {
            "streams": n_streams,
            "seconds": round(t1 - t0),
            "expected": expected,
            "reported": found,
            "duplicates": duplicates,
            "false": false_reports,
            "latency_median": round(statistics.median(latencies), 1) if latencies else None,
            "latency_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1) if latencies else None,
            "latency_max": round(latencies[-1], 1) if latencies else None,
            "within_15s": round(sum(1 for x in latencies if x <= 15) / max(1, expected), 3),
            "server_cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 2),
            # CPU seconds of the soundmark tree (server + recognition workers) per minute of one stream
            "cpu_s_per_stream_minute": round((cpu1 - cpu0) / (n_streams * (t1 - t0) / 60), 3),
            "load_before": [round(x, 2) for x in load0],
            "load_after": [round(x, 2) for x in load1],
            "cpus": os.cpu_count(),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, nargs="+", default=[50], help="stream counts to measure")
    ap.add_argument("--seconds", type=float, default=150.0, help="measured span per run")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    args = ap.parse_args()
    for n in args.streams:
        print(run(n, args.seconds, args.warmup), flush=True)


if __name__ == "__main__":
    main()
