"""Run the shared recognition benchmark on soundmark and keep the result.

Usage: python benchmarks/run_public.py [--corpus DIR] [--label TEXT] [-- extra run.py args]

Writes benchmarks/results/<date>-<label>.json and appends the summary line to
benchmarks/results/summary.log, so the experiment log in benchmarks/LOG.md can quote it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN_PY = HERE.parent.parent / "shared" / "bench" / "run.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--label", default="run", help="name of this run in the results folder")
    ap.add_argument("--run-py", type=Path, default=RUN_PY, help="the shared bench's run.py")
    ap.add_argument("extra", nargs="*", help="further run.py arguments (after --)")
    args = ap.parse_args()
    exe = shutil.which("soundmark") or str(Path(sys.executable).parent / "soundmark")
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = out_dir / f"{stamp}-{args.label}.json"
    cmd = [sys.executable, str(args.run_py), "--corpus", str(args.corpus), "--system", exe,
           "--name", f"soundmark-{args.label}", "--out", str(out), *args.extra]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("accuracy=")]
    if lines:
        with open(out_dir / "summary.log", "a") as fh:
            fh.write(f"{stamp} {args.label} {args.corpus.name}: {lines[-1]}\n")
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
