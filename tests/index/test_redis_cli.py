"""The command line on the Redis Cluster index: `add` with SOUNDMARK_INDEX_URL, then every later
command finds the index through the store's catalog (real processes, a real cluster)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece


def run(*args: str, index_url: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOUNDMARK_DB", "SOUNDMARK_INDEX_URL")}
    if index_url is not None:
        env["SOUNDMARK_INDEX_URL"] = index_url
    proc = subprocess.run(
        [sys.executable, "-m", "soundmark", *args], capture_output=True, text=True, timeout=300, env=env
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_add_then_recognize_through_the_cluster(pieces: list[Piece], redis_url: str, tmp_path: Path) -> None:
    db = tmp_path / "db"
    added = json.loads(
        run(
            "add",
            "--db",
            str(db),
            "--json",
            "--processes",
            "1",
            *(str(p.path) for p in pieces[:3]),
            index_url=redis_url,
        ).stdout
    )
    assert added["added"] == 3
    assert not list(db.glob("segments/seg-*")), "the postings went to the cluster, not to segment files"
    q = tmp_path / "q.wav"
    write_wav(q, pieces[1].samples[12 * PIECE_RATE : 20 * PIECE_RATE], PIECE_RATE)
    # Without the variable: the URL the store recorded when `add` created it.
    result = json.loads(run("recognize", "--db", str(db), "--json", str(q)).stdout)["result"]
    assert result is not None and result["title"] == pieces[1].path.stem
    # remove: the track is gone from answers
    listed = [json.loads(x) for x in run("list", "--db", str(db), "--json").stdout.splitlines()]
    victim = next(t for t in listed if t["source"] == str(pieces[1].path))
    run("remove", "--db", str(db), str(victim["id"]))
    assert json.loads(run("recognize", "--db", str(db), "--json", str(q)).stdout)["result"] is None


def test_an_unreachable_cluster_is_a_message(pieces: list[Piece], tmp_path: Path) -> None:
    proc = run("add", "--db", str(tmp_path / "db"), str(pieces[0].path), index_url="redis://127.0.0.1:1", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "cannot reach the Redis cluster at redis://127.0.0.1:1/soundmark" in proc.stderr


def test_a_malformed_index_url_is_a_message(pieces: list[Piece], tmp_path: Path) -> None:
    proc = run("add", "--db", str(tmp_path / "db"), str(pieces[0].path), index_url="redis://nohost", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "is not host:port" in proc.stderr
