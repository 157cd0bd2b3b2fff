"""Load test of `soundmark serve` with wrk: 5-second queries from the public bench corpus.

Usage: python benchmarks/load_test.py --db STORE --corpus DIR [--seconds 30] [--connections 8]

Starts the server on a loopback port (with `--workers` = cores), creates a token, writes one
multipart body per 5 s positive query of the corpus, and drives `POST /` with wrk (Debian package
`wrk`) from a second process, bounded in time. Prints requests/s, latency percentiles, non-200
answers and AudD-level errors, and appends a line to benchmarks/results/load.log.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

LUA = r"""
local bodies = {}
local boundary = "%(boundary)s"
local n = 0
function init(args)
  for line in io.lines("%(list)s") do
    local f = io.open(line, "rb"); table.insert(bodies, f:read("*all")); f:close()
  end
end
local errors = 0
local matched = 0
function request()
  n = n + 1
  local body = bodies[(n %% #bodies) + 1]
  return wrk.format("POST", "/", {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"status":"error"', 1, true) then errors = errors + 1 end
  if string.find(body, '"title"', 1, true) then matched = matched + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%.2f %%.2f %%.2f %%d %%d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.duration, 0))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def multipart(boundary: str, token: str, name: str, data: bytes) -> bytes:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="api_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="a store holding the corpus references")
    ap.add_argument("--corpus", type=Path, default=Path.home() / "benchdata" / "public")
    ap.add_argument("--seconds", type=int, default=30, help="duration of the wrk run")
    ap.add_argument("--connections", type=int, default=8, help="concurrent connections")
    ap.add_argument("--workers", type=int, default=0, help="server worker processes (0 = one per core)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    exe = str(Path(sys.executable).parent / "soundmark")
    token = subprocess.run([exe, "token", "create", "--db", str(args.db), "--name", "load-test"],
                           capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="soundmark-load-"))
    boundary = uuid.uuid4().hex
    files = []
    with open(args.corpus / "truth.csv") as fh:
        for row in csv.DictReader(fh):
            if row["duration"] == "5" and row["title"]:
                body = tmp / f"{len(files)}.body"
                body.write_bytes(multipart(boundary, token, Path(row["query"]).name,
                                           (args.corpus / row["query"]).read_bytes()))  # fmt: skip
                files.append(str(body))
    (tmp / "list.txt").write_text("\n".join(files) + "\n")
    (tmp / "post.lua").write_text(LUA % {"boundary": boundary, "list": tmp / "list.txt"})
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115
    workers = str(args.workers or os.cpu_count() or 1)
    cmd = [exe, "serve", "--db", str(args.db), "--port", str(port), "--workers", workers]
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        # Warm every worker (first queries map the index pages).
        for f in files[:20]:
            httpx.post(url + "/", content=Path(f).read_bytes(), timeout=30,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip
        out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                              "-s", str(tmp / "post.lua"), url + "/"], capture_output=True, text=True,
                             timeout=args.seconds + 60)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    print(out.stdout)
    m = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", out.stdout)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if not m or not rps:
        print(out.stderr)
        return 1
    summary = {
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "queries": len(files),
        "connections": args.connections,
        "seconds": args.seconds,
        "requests": int(m.group(1)),
        "transport_or_status_errors": int(m.group(2)),
        "rps": float(rps.group(1)),
        "p50_ms": float(m.group(3)),
        "p95_ms": float(m.group(4)),
        "p99_ms": float(m.group(5)),
    }
    api_errors = (tmp / "server.log").read_text().count('"status": 500')
    summary["server_5xx"] = api_errors
    print(json.dumps(summary))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    with open(results / "load.log", "a") as fh:
        fh.write(json.dumps(summary) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
