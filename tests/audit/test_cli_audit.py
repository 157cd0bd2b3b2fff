"""The audit command as users run it: a real process over the planted folder."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import Library
from soundmark.audit.render import CSV_COLUMNS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOUNDMARK_DB"}
    return subprocess.run([sys.executable, "-m", "soundmark", "audit", *args], capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip


def test_json_and_csv_shapes(library: Library) -> None:
    proc = run(str(library.root), "--json", "-j", "2")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["files"] == 26 and [f["reason"].split(":")[0] for f in doc["failures"]] == ["AudioError"]
    assert "could not read" in proc.stderr and "broken.mp3" in proc.stderr
    assert sorted(len(g["members"]) for g in doc["groups"]) == [2, 2, 4, 4]
    pair = doc["groups"][0]["pairs"][0]
    assert set(pair) == {"a", "b", "kind", "shared_seconds", "fraction_a", "fraction_b", "offset_seconds",
                         "segments", "votes", "peak_share"}  # fmt: skip
    assert set(pair["segments"][0]) == {"a_start", "a_end", "b_start", "b_end"}
    assert set(doc["groups"][0]["members"][0]) == {"path", "duration", "title"}

    rows = list(csv.DictReader(io.StringIO(run(str(library.root), "--csv", "-q").stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == sum(len(g["pairs"]) for g in doc["groups"])
    edit = next(r for r in rows if Path(r["b"]).name == library.names["t3.edit"])
    assert (edit["kind"], Path(edit["a"]).name, float(edit["fraction_b"])) == ("contains", library.names["t3"], 1.0)


def test_the_table(library: Library) -> None:
    proc = run(str(library.root / "copies"), str(library.root / library.names["t1"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("audited 4 files")
    assert "1 group sharing audio (6 pairs)" in proc.stdout
    assert "same as" in proc.stdout
    assert proc.stderr == ""  # no progress bar and nothing else when stderr is not a terminal


def test_an_empty_folder_says_so(tmp_path: Path) -> None:
    proc = run(str(tmp_path))
    assert proc.returncode == 1
    assert f"no audio files found under {tmp_path}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_usage_is_explained(tmp_path: Path, library: Library) -> None:
    assert "give audio files/folders to audit, or --db STORE" in run().stderr
    assert "choose one of --json and --csv" in run(str(library.root), "--json", "--csv").stderr
    missing = run("--db", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    not_a_store = run("--db", str(tmp_path))
    assert not_a_store.returncode == 1 and "no soundmark store" in not_a_store.stderr


def test_help_explains_every_option() -> None:
    out = run("--help").stdout
    for option in ("--db", "--min-overlap SECONDS", "--processes", "--json", "--csv", "--quiet"):
        assert option in out
