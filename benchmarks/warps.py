"""Recognition beyond the warp grid: continuous speed, tempo and pitch, talk-over, phone chains.

Usage: python benchmarks/warps.py --db STORE [--corpus DIR] [--seed N] [--scale 1.0] [--json OUT]

STORE holds the corpus's references (``soundmark add --db STORE --manifest CORPUS/manifest.csv``).
Every query is cut from a random reference at a random place, 3, 5 or 10 s long, and changed by
one kind with its amount drawn at random over the whole range, continuously (never from a
list), so a dip between the query-side warp grid's points cannot hide:

- ``speed``  resampling speed change, tempo and pitch together, rate in 0.92 … 1.08;
- ``tempo``  time stretch (pitch kept), rate in 0.90 … 1.10;
- ``pitch``  pitch shift (tempo kept), −2 … +2 semitones;
- ``speed+snr5`` / ``tempo+snr5`` / ``pitch+snr5``: the same with noise at 5 dB SNR;
- ``talkover``: a DJ talking over the music: espeak-ng speech (voices and texts the bench's
  babble does not use) as loud as the music was, the music ducked 3–6 dB under it;
- ``phone_bar``: a cheap phone in a noisy reverberant bar: room reverb, bar noise (babble and
  effects, 5–10 dB SNR), 300–3400 Hz band, automatic gain, clipping, the GSM full-rate codec;
- ``noise-5``: noise at −5 dB SNR.

Per kind it prints a table over ranges of the amount (|rate − 1| in 1 % steps, |semitones| in
0.5 steps): title accuracy on 3 s and on 5–10 s queries, the reported offset within 1.5 s, the
reported speed/pitch within 0.5 %, and wrong-song answers. The speed, tempo and pitch and noise
functions are the shared bench's (``../shared/bench/degrade.py``), imported from it; it needs
the ``bench`` extra (pedalboard, soundfile).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import scipy.signal as ss

from soundmark.audio.decode import decode
from soundmark.fingerprint.params import FingerprintParams
from soundmark.match.recognizer import Recognizer
from soundmark.store import Store

SR = 8000  # the engine rate: every degradation runs here (the band above 3.8 kHz is never used)
DURATIONS = (3, 5, 10)
OFFSET_TOLERANCE = 1.5  # seconds
RATE_TOLERANCE = 0.005  # relative
# Voices and texts the bench's babble bed does not use, so talk-over is not the babble seen before.
TALK_VOICES = ("en-us+m3", "en-gb+f2", "en-us+f4", "en-gb-x-rp+m7")
TALK_TEXTS = ("/usr/share/common-licenses/Apache-2.0", "/usr/share/common-licenses/Artistic")


@dataclass
class Query:
    kind: str
    amount: float  # rate (speed, tempo) or semitones (pitch); 0 for the others
    seconds: int
    title: str
    offset: float  # seconds into the reference of the query's first sample
    time_rate: float  # what a perfect answer reports
    freq_rate: float


@dataclass
class Outcome:
    query: Query
    answered: str | None
    correct: bool
    offset_ok: bool
    rate_ok: bool
    ms: float
    got_time_rate: float | None = None  # the answer's reported rates
    got_freq_rate: float | None = None


def load_degrade(bench: Path) -> ModuleType:
    sys.path.insert(0, str(bench))
    import degrade  # type: ignore[import-not-found]  # the shared bench's module, not a package

    return degrade  # type: ignore[no-any-return]


class Sources:
    """The references at the engine rate, the bench's noise beds and a talk-over bed."""

    def __init__(self, corpus: Path, degrade: ModuleType, rng: np.random.Generator, workdir: Path):
        import soundfile as sf

        with open(corpus / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        self.refs = [(r["title"], decode(corpus / r["path"], SR)) for r in rows]
        self.beds = {}
        for name in ("babble", "sfx"):
            bed, bed_sr = sf.read(corpus / "noise" / f"{name}.flac", dtype="float32")
            self.beds[name] = degrade.resample(bed, bed_sr, SR).astype(np.float32)
        sents = degrade.read_text_sentences(list(TALK_TEXTS))
        degrade.SR = SR  # synth_speech resamples espeak's output to degrade.SR
        self.talk = degrade.synth_speech(sents, list(TALK_VOICES), 150, rng, str(workdir))
        self.d = degrade

    def noise(self, n: int, rng: np.random.Generator, types: tuple[str, ...]) -> np.ndarray:
        t = types[int(rng.integers(len(types)))]
        z = np.zeros(n, np.float32)
        for part in t.split("+"):
            if part == "pink":
                seg = self.d.pink_noise(n, rng)
            else:
                bed = self.beds[part]
                seg = bed[(np.arange(n) + int(rng.integers(len(bed)))) % len(bed)]
            z += seg / (self.d.rms(seg) + 1e-12) * (10 ** (rng.uniform(-6, 0) / 20) if "+" in t else 1.0)
        return z

    def with_noise(self, x: np.ndarray, snr: float, rng: np.random.Generator,
                   types: tuple[str, ...] = ("babble", "sfx", "pink", "babble+sfx")) -> np.ndarray:  # fmt: skip
        return (x + self.d.scale_to_snr(x, self.noise(len(x), rng, types), snr)).astype(np.float32)


def _speed(x: np.ndarray, rate: float) -> np.ndarray:
    fr = Fraction(1.0 / rate).limit_denominator(1000)
    return ss.resample_poly(x, fr.numerator, fr.denominator).astype(np.float32)


def _stretch(x: np.ndarray, rate: float, semitones: float) -> np.ndarray:
    from pedalboard import time_stretch

    return time_stretch(x[None, :].astype(np.float32), SR, stretch_factor=float(rate),
                        pitch_shift_in_semitones=float(semitones))[0]  # fmt: skip


def _agc(x: np.ndarray, target_rms: float = 0.1, window: int = SR // 5) -> np.ndarray:
    """A phone's automatic gain: the level follows a 200 ms moving RMS towards ``target_rms``."""
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(window) / window, mode="same")) + 1e-4
    return (x * np.minimum(target_rms / env, 30.0)).astype(np.float32)


def _phone_bar(src: Sources, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from pedalboard import GSMFullRateCompressor

    d = src.d
    ir, _, _ = d.synth_rir(SR, rng, (0.5, 1.2))
    y = d.butter(d.reverb(x, ir), SR, lo=100, order=2)
    y = src.with_noise(y, float(rng.uniform(5, 10)), rng, ("babble", "babble+sfx"))
    y = d.butter(y, SR, lo=300, hi=3400, order=4)
    y = _agc(y)
    y = d.hard_clip(y / (np.max(np.abs(y)) + 1e-9), float(rng.uniform(0.01, 0.05)))
    return GSMFullRateCompressor()(y[None, :].astype(np.float32), SR)[0]


def _talkover(src: Sources, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    s = int(rng.integers(len(src.talk) - len(x)))
    speech = src.talk[s : s + len(x)]
    speech = speech / (src.d.rms(speech) + 1e-12) * src.d.rms(x)  # 0 dB against the music as it was
    duck = 10 ** (-rng.uniform(3, 6) / 20)
    return (duck * x + speech).astype(np.float32)


KINDS = ("speed", "tempo", "pitch", "speed+snr5", "tempo+snr5", "pitch+snr5", "talkover", "phone_bar", "noise-5")


def make_query(src: Sources, kind: str, rng: np.random.Generator) -> tuple[Query, np.ndarray] | None:
    """One query of ``kind``; None when its excerpt is (near) silence."""
    title, ref = src.refs[int(rng.integers(len(src.refs)))]
    seconds = DURATIONS[int(rng.integers(len(DURATIONS)))]
    base = kind.split("+")[0]
    amount, t_rate, f_rate, need = 0.0, 1.0, 1.0, float(seconds)
    if base == "speed":
        amount = t_rate = f_rate = float(rng.uniform(0.92, 1.08))
        need = seconds * amount
    elif base == "tempo":
        amount = t_rate = float(rng.uniform(0.90, 1.10))
        need = seconds * amount
    elif base == "pitch":
        amount = float(rng.uniform(-2.0, 2.0))
        f_rate = 2 ** (amount / 12)
    n = int(need * SR)
    if len(ref) <= n + SR:
        return None
    start = int(rng.integers(0, len(ref) - n))
    x = ref[start : start + n].astype(np.float32)
    if src.d.rms(x) < 1e-3:
        return None
    if base == "speed":
        y = _speed(x, amount)
    elif base == "tempo":
        y = _stretch(x, amount, 0.0)
    elif base == "pitch":
        y = _stretch(x, 1.0, amount)
    elif kind == "talkover":
        y = _talkover(src, x, rng)
    elif kind == "phone_bar":
        y = _phone_bar(src, x, rng)
    else:
        y = x
    if kind.endswith("+snr5"):
        y = src.with_noise(y, 5.0, rng)
    elif kind == "noise-5":
        y = src.with_noise(y, -5.0, rng)
    y = y[: seconds * SR]
    y = 0.5 * y / (np.max(np.abs(y)) + 1e-9)
    return Query(kind, round(amount, 5), seconds, title, start / SR, t_rate, f_rate), y.astype(np.float32)


def judge(q: Query, rec: Recognizer, y: np.ndarray) -> Outcome:
    t0 = time.perf_counter()
    matches = rec.recognize(y)
    ms = 1000 * (time.perf_counter() - t0)
    if not matches:
        return Outcome(q, None, False, False, False, ms)
    m = matches[0]
    ok = m.title == q.title
    offset_ok = ok and abs(m.offset_seconds - q.offset) <= OFFSET_TOLERANCE
    rate_ok = (
        ok
        and abs(m.time_rate / q.time_rate - 1) <= RATE_TOLERANCE
        and abs(m.freq_rate / q.freq_rate - 1) <= RATE_TOLERANCE
    )
    return Outcome(q, m.title, ok, bool(offset_ok), bool(rate_ok), ms, m.time_rate, m.freq_rate)


def range_of(q: Query) -> str:
    if q.kind.startswith(("speed", "tempo")):
        lo = min(int(abs(q.amount - 1) * 100), 9)
        return f"{lo}-{lo + 1}%"
    if q.kind.startswith("pitch"):
        lo = min(int(abs(q.amount) / 0.5), 3) * 0.5
        return f"{lo:.1f}-{lo + 0.5:.1f}st"
    return "all"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}" if whole else "    -"


def table(outcomes: list[Outcome]) -> list[str]:
    head = ("kind", "range", "n", "acc%", "3s%", "5-10s%", "offs%", "rate%", "wrong")
    lines = [f"{head[0]:<11} {head[1]:<10} {head[2]:>4} " + " ".join(f"{h:>6}" for h in head[3:8]) + f" {head[8]:>5}"]
    for kind in KINDS:
        rows = [o for o in outcomes if o.query.kind == kind]
        if not rows:
            continue
        ranges = sorted({range_of(o.query) for o in rows}, key=lambda r: float(r.split("-")[0]) if r != "all" else 0)
        for r in [*ranges, "total"] if len(ranges) > 1 else ranges:
            sel = [o for o in rows if r == "total" or range_of(o.query) == r]
            short = [o for o in sel if o.query.seconds == 3]
            long_ = [o for o in sel if o.query.seconds > 3]
            n = len(sel)
            wrong = sum(1 for o in sel if o.answered is not None and not o.correct)
            lines.append(
                f"{kind:<11} {r:<10} {n:>4} {_pct(sum(o.correct for o in sel), n):>6} "
                f"{_pct(sum(o.correct for o in short), len(short)):>6} "
                f"{_pct(sum(o.correct for o in long_), len(long_)):>6} "
                f"{_pct(sum(o.offset_ok for o in sel), n):>6} {_pct(sum(o.rate_ok for o in sel), n):>6} {wrong:>5}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="a store holding the corpus's references")
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public", help="the bench corpus")
    ap.add_argument("--bench", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "bench",
                    help="the shared bench (for degrade.py)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=13, help="draws of tracks, places and amounts")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiplies the queries per kind (160 speed/tempo/pitch, 60 the others)")  # fmt: skip
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds to run")
    ap.add_argument("--json", type=Path, help="write every outcome here")
    ap.add_argument(
        "--grid", help="a query warp grid to try instead of the default, as JSON [[time_rate, freq_rate], ...]"
    )
    args = ap.parse_args(argv)
    degrade = load_degrade(args.bench)
    rng = np.random.default_rng(args.seed)
    params = FingerprintParams()
    if args.grid:
        params = dataclasses.replace(params, warp_grid=tuple((float(a), float(b)) for a, b in json.loads(args.grid)))
    store = Store(args.db, params)
    rec = Recognizer(store)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Sources(args.corpus, degrade, rng, Path(tmp))
        for kind in args.kinds.split(","):
            want = math.ceil((160 if kind in ("speed", "tempo", "pitch") else 60) * args.scale)
            kind_rng = np.random.default_rng([args.seed, KINDS.index(kind)])
            made = 0
            while made < want:
                got = make_query(src, kind, kind_rng)
                if got is None:
                    continue
                outcomes.append(judge(got[0], rec, got[1]))
                made += 1
            print(f"  {kind}: {made} queries", file=sys.stderr, flush=True)
    lines = table(outcomes)
    print("\n".join(lines))
    ms = np.array([o.ms for o in outcomes])
    wrong = sum(1 for o in outcomes if o.answered is not None and not o.correct)
    print(f"queries={len(outcomes)} wrong={wrong} ({100 * wrong / len(outcomes):.2f}%) "
          f"recognize_p50={np.percentile(ms, 50):.1f}ms p95={np.percentile(ms, 95):.1f}ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
