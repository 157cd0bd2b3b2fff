"""The command line as users and the benchmark drive it: real processes, real files."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece

EXE = [sys.executable, "-m", "soundmark"]


def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOUNDMARK_DB": ""}
    env.pop("SOUNDMARK_DB")
    proc = subprocess.run([*EXE, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def bench_like(tmp_path_factory: pytest.TempPathFactory, pieces: list[Piece]) -> Path:
    """A corpus laid out like the shared benchmark: refs/, manifest.csv, queries/."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "refs").mkdir()
    (root / "queries").mkdir()
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "title", "artist", "album", "release_date", "label"])
        for i, p in enumerate(pieces[:4]):
            shutil.copy(p.path, root / "refs" / f"t{i:04d}.wav")
            w.writerow([f"refs/t{i:04d}.wav", f"t{i:04d}", "pkg", "music", "", ""])
    for i, p in enumerate(pieces[:4]):
        start = 7 + 3 * i
        write_wav(
            root / "queries" / f"q{i}.wav",
            p.samples[start * PIECE_RATE : (start + 5) * PIECE_RATE],
            PIECE_RATE,
        )
    write_wav(root / "queries" / "unknown.wav", pieces[5].samples[: 5 * PIECE_RATE], PIECE_RATE)
    (root / "queries" / "broken.mp3").write_text("this is not audio")
    return root


def test_benchmark_contract(bench_like: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    added = run("add", "--db", str(db), "--manifest", str(bench_like / "manifest.csv"), cwd=bench_like)
    assert "added 4 tracks" in added.stdout
    queries = sorted(str(p) for p in (bench_like / "queries").iterdir())
    out = run("recognize", "--db", str(db), "--json", *queries, check=False)
    # One file is not audio: every file still gets its line, the run exits 1 and names it.
    assert out.returncode == 1, out.stderr
    assert f"{bench_like / 'queries' / 'broken.mp3'}: not readable as audio" in out.stderr
    lines = {}
    for line in out.stdout.splitlines():
        obj = json.loads(line)
        lines[obj["file"]] = obj
    assert set(lines) == set(queries)
    for i in range(4):
        obj = lines[str(bench_like / "queries" / f"q{i}.wav")]
        assert obj["status"] == "success"
        r = obj["result"]
        assert r["title"] == f"t{i:04d}" and r["artist"] == "pkg"
        assert abs(r["offset"] - (7 + 3 * i)) < 0.5
        assert r["timecode"] == f"00:{7 + 3 * i:02d}"
        assert isinstance(r["score"], float) and obj["elapsed_ms"] > 0
    assert lines[str(bench_like / "queries" / "unknown.wav")]["result"] is None
    broken = lines[str(bench_like / "queries" / "broken.mp3")]
    assert broken["status"] == "error" and broken["error"]["error_code"] == 500


def test_add_folder_info_list_remove(pieces: list[Piece], tmp_path: Path) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    for p in pieces[:3]:
        shutil.copy(p.path, folder / p.path.name)
    db = tmp_path / "db"
    summary = json.loads(run("add", "--db", str(db), "--json", str(folder)).stdout)
    assert summary["added"] == 3 and summary["failed"] == 0 and summary["audio_hours"] > 0
    again = json.loads(run("add", "--db", str(db), "--json", str(folder)).stdout)
    assert again["added"] == 0 and again["known"] == 3 and again["duplicates"] == 0

    info = json.loads(run("info", "--db", str(db), "--json").stdout)
    assert info["tracks"] == 3 and info["fingerprints"] > 1000 and info["bytes_on_disk"] > 0

    listed = [json.loads(x) for x in run("list", "--db", str(db), "--json").stdout.splitlines()]
    assert sorted(t["title"] for t in listed) == sorted(p.path.stem for p in pieces[:3])

    victim = listed[0]
    run("remove", "--db", str(db), str(victim["id"]))
    info = json.loads(run("info", "--db", str(db), "--json").stdout)
    assert info["tracks"] == 2
    out = run("recognize", "--db", str(db), "--json", victim["source"])
    assert json.loads(out.stdout)["result"] is None
    missing = run("remove", "--db", str(db), "999", check=False)
    assert missing.returncode != 0 and "no such track" in missing.stderr


def test_add_reports_failures_and_keeps_going(pieces: list[Piece], tmp_path: Path) -> None:
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(b"\x00" * 1000)
    db = tmp_path / "db"
    summary = json.loads(run("add", "--db", str(db), "--json", str(bad), str(pieces[0].path)).stdout)
    assert summary["added"] == 1 and summary["failed"] == 1
    assert summary["failures"][0][0] == str(bad)


def test_recognize_exit_status_names_missing_and_unreadable_files(bench_like: Path, tmp_path: Path) -> None:
    db = tmp_path / "db"
    run("add", "--db", str(db), str(bench_like / "refs" / "t0000.wav"))
    good = str(bench_like / "queries" / "q0.wav")
    assert run("recognize", "--db", str(db), good).returncode == 0
    gone = tmp_path / "gone.wav"
    broken = bench_like / "queries" / "broken.mp3"
    out = run("recognize", "--db", str(db), "--json", good, str(gone), str(broken), check=False)
    assert out.returncode == 2  # a missing file wins over an unreadable one
    assert f"{gone}: no such file" in out.stderr and f"{broken}: not readable as audio" in out.stderr
    statuses = [json.loads(line)["status"] for line in out.stdout.splitlines()]
    assert statuses == ["success", "error", "error"]  # still one JSON line per file, in order
    human = run("recognize", "--db", str(db), str(broken), check=False)
    assert human.returncode == 1 and "broken.mp3" in human.stderr


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("recognize", "--db", str(tmp_path / "nope"), str(tmp_path), check=False)
    assert proc.returncode != 0 and "no soundmark store" in proc.stderr


@pytest.mark.parametrize("command", ["add", "recognize", "info", "list", "remove", "demo", "meta", "serve"])
def test_every_option_is_explained(command: str) -> None:
    text = run(command, "--help").stdout
    assert "Usage:" in text
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and not stripped.startswith("--help"):
            assert len(stripped.split(None, 1)) == 2 or "  " in line, f"undocumented option: {line}"


def test_meta_shows_and_changes_fields(pieces: list[Piece], tmp_path: Path) -> None:
    db = tmp_path / "db"
    run("add", "--db", str(db), str(pieces[0].path))
    shown = json.loads(run("meta", "--db", str(db), "--track-id", "1").stdout)
    assert shown["title"] == pieces[0].path.stem
    lyrics = tmp_path / "lyrics.txt"
    lyrics.write_text("la la la")
    out = run(
        "meta", "--db", str(db), "--track-id", "1", "--title", "Renamed", "--isrc", "GBAAA2400001",
        "--lyrics-file", str(lyrics), "--external", "spotify_id=abc", "--external", "deezer_id=42",
    )  # fmt: skip
    changed = json.loads(out.stdout)
    assert changed["title"] == "Renamed" and changed["isrc"] == "GBAAA2400001" and changed["lyrics"] == "la la la"
    assert changed["external"] == {"spotify_id": "abc", "deezer_id": "42"}
    removed = json.loads(run("meta", "--db", str(db), "--track-id", "1", "--external", "deezer_id=").stdout)
    assert removed["external"] == {"spotify_id": "abc"} and removed["title"] == "Renamed"
    assert run("meta", "--db", str(db), "--audio-id", "7", check=False).returncode != 0


def _limit_file_size(max_bytes: int) -> None:
    """In the child: no file may grow past ``max_bytes`` (writes fail with EFBIG, as on a full disk)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))


def test_add_on_a_full_disk_is_a_clear_error_and_leaves_the_store_whole(pieces: list[Piece], tmp_path: Path) -> None:
    db = tmp_path / "db"
    run("add", "--db", str(db), "--quiet", str(pieces[0].path))
    # Three 40 s tracks make a segment whose key file alone is ~60 KB; the catalog's files stay below 48 KB.
    # Not measured under `make coverage`: its data file could not be written under this limit either.
    env = {k: v for k, v in os.environ.items() if k != "SOUNDMARK_DB" and not k.startswith("COVERAGE_")}
    others = [str(p.path) for p in pieces[1:4]]
    proc = subprocess.run(
        [*EXE, "add", "--db", str(db), "--quiet", "--processes", "1", *others],
        capture_output=True, text=True, timeout=300, env=env, preexec_fn=lambda: _limit_file_size(48 * 1024),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "add stopped: could not write an index segment" in proc.stderr and "File too large" in proc.stderr
    assert "run the same command again to resume" in proc.stderr
    assert [d.name for d in (db / "segments").iterdir() if not d.name.startswith("seg-")] == []  # no .tmp-seg-*
    info = json.loads(run("info", "--db", str(db), "--json").stdout)
    assert info["tracks"] == 1 and info["segments"] == 1
    # The store is usable: what was there is recognised, and the same command resumes.
    q = tmp_path / "q.wav"
    write_wav(q, pieces[0].samples[8 * PIECE_RATE : 14 * PIECE_RATE], PIECE_RATE)
    assert json.loads(run("recognize", "--db", str(db), "--json", str(q)).stdout)["result"] is not None
    resumed = json.loads(run("add", "--db", str(db), "--json", "--processes", "1", *others).stdout)
    assert resumed["added"] == 3 and resumed["tracks_in_store"] == 4


def test_remove_then_add_again_is_recognised(pieces: list[Piece], tmp_path: Path) -> None:
    """Removing the newest track and adding it back must not reuse its (tombstoned) id."""
    db = tmp_path / "db"
    run("add", "--db", str(db), "--quiet", str(pieces[0].path), str(pieces[1].path))
    listed = [json.loads(x) for x in run("list", "--db", str(db), "--json").stdout.splitlines()]
    newest = max(listed, key=lambda t: t["id"])  # the id SQLite would hand out again without AUTOINCREMENT
    run("remove", "--db", str(db), str(newest["id"]))
    back = next(p for p in pieces[:2] if str(p.path) == newest["source"])
    again = json.loads(run("add", "--db", str(db), "--json", str(back.path)).stdout)
    assert again["added"] == 1 and again["known"] == 0
    q = tmp_path / "q.wav"
    write_wav(q, back.samples[10 * PIECE_RATE : 16 * PIECE_RATE], PIECE_RATE)
    result = json.loads(run("recognize", "--db", str(db), "--json", str(q)).stdout)["result"]
    assert result is not None and result["title"] == back.path.stem
