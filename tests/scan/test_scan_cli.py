"""soundmark scan: the command line over a long recording."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner
from mixing import Recording

from soundmark.cli.main import cli


def _run(rec: Recording, *args: str) -> str:
    result = CliRunner().invoke(cli, ["scan", "--db", str(rec.db), "--workers", "1", str(rec.path), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_scan_json(recording: Recording) -> None:
    out = json.loads(_run(recording, "--json"))
    assert out["duration"] > 1000
    titles = [t["title"] for t in out["tracks"]]
    assert titles[:3] == ["Piece 1001", "Piece 1002", "Piece 1003"]
    assert len(titles) == 32
    first = out["tracks"][0]
    assert first["artist"] == "Scan Band" and first["start_time"] == "00:00:00"
    assert {"start", "end", "ref_start", "ref_end", "speed", "score", "track_id"} <= set(first)


def test_scan_tracklist_and_csv(recording: Recording) -> None:
    lines = _run(recording, "--tracklist").splitlines()
    assert len(lines) == 32 and lines[0] == "00:00:00 Scan Band - Piece 1001"
    rows = list(csv.DictReader(io.StringIO(_run(recording, "--csv"))))
    assert len(rows) == 32 and rows[1]["title"] == "Piece 1002"
    assert float(rows[1]["start"]) > 20


def test_scan_human_output_and_options(recording: Recording) -> None:
    out = _run(recording, "--every", "6", "--min-score", "8")
    assert out.splitlines()[0].endswith("realtime)") and "32 tracks" in out.splitlines()[0]
    assert "Piece 1004" in out and "speed 1.04" in out


def test_scan_help_and_errors(recording: Recording, tmp_path) -> None:  # type: ignore[no-untyped-def]
    help_text = CliRunner().invoke(cli, ["scan", "--help"]).output
    for option in ("--db", "--json", "--tracklist", "--csv", "--every", "--min-score", "--workers"):
        assert option in help_text
    assert "scan" in CliRunner().invoke(cli, ["--help"]).output
    missing = CliRunner().invoke(cli, ["scan", "--db", str(recording.db), str(tmp_path / "nope.wav")])
    assert missing.exit_code != 0 and "no such file" in missing.output
