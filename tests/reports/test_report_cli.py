"""``soundmark report``: the summary, the exports and the exit codes, run as the user runs it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from airplay import EXPECTED_PLAYS, EXPECTED_SECONDS, Airplay
from click.testing import CliRunner

from soundmark.cli.main import cli

NOVEMBER_1_TO_4 = ["--from", "2026-11-01", "--to", "2026-11-04"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "soundmark", "report", *args], capture_output=True, text=True)


def test_summary_table(airplay: Airplay) -> None:
    done = _run("--db", str(airplay.db), *NOVEMBER_1_TO_4)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Airplay 2026-11-01 to 2026-11-04 (excluded), UTC, all stations" in out
    assert f"{EXPECTED_PLAYS} plays, 0:21:10 play time, 3 tracks (1 plays without a length)" in out
    assert "radio 1 (station owner)" in out and "http://radio.example/2.mp3" in out
    assert "USRC17607839" in out
    assert "3 of 3 days with plays; busiest 2026-11-01: 3 plays" in out


def test_exports_and_json(airplay: Airplay, tmp_path: Path) -> None:
    log, tracks, pdf = tmp_path / "log.csv", tmp_path / "tracks.csv", tmp_path / "r.pdf"
    runner = CliRunner()
    args = ["report", "--db", str(airplay.db), *NOVEMBER_1_TO_4, "--radio-id", "1"]
    done = runner.invoke(cli, [*args, "--csv", str(log), "--tracks-csv", str(tracks), "--pdf", str(pdf)])
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(log.read_text())))
    assert len(rows) == 4 and {r["radio_id"] for r in rows} == {"1"}
    assert sum(int(r["plays"]) for r in csv.DictReader(io.StringIO(tracks.read_text()))) == 4
    assert pdf.read_bytes().startswith(b"%PDF-")
    body = json.loads(runner.invoke(cli, ["report", "--db", str(airplay.db), *NOVEMBER_1_TO_4, "--json"]).output)
    assert (body["plays"], body["play_seconds"]) == (EXPECTED_PLAYS, EXPECTED_SECONDS)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--from", "2026-13-01", "--to", "2026-12-01"], "`from` must be a date as YYYY-MM-DD"),
        (["--from", "2026-11-05", "--to", "2026-11-01"], "must be after `from`"),
        (["--from", "2024-01-01", "--to", "2026-01-01"], "at most 366"),
        (["--from", "2026-11-01", "--to", "2026-11-04", "--tz", "Nowhere/Land"], "unknown time zone"),
        (["--from", "2026-11-01"], "Missing option '--to'"),
    ],
)
def test_bad_ranges_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    done = _run("--db", str(tmp_path), *args)
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_no_store_exits_1(tmp_path: Path) -> None:
    done = _run("--db", str(tmp_path / "nothing"), *NOVEMBER_1_TO_4)
    assert done.returncode == 1
    assert "no store at" in done.stderr and "Traceback" not in done.stderr


def test_help_explains_every_option() -> None:
    out = CliRunner().invoke(cli, ["report", "--help"]).output
    for option in ("--db", "--from", "--to", "--radio-id", "--tz", "--csv", "--tracks-csv", "--pdf", "--json", "--top"):
        assert option in out
    assert "excluded" in out and "midnight" in out
