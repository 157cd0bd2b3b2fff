"""soundmark explain and soundmark scan --timeline on the command line."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from matplotlib.image import imread

from soundmark.cli.main import cli
from soundmark.demo import write_wav
from support import PIECE_RATE, Piece


def _run(*args: str) -> tuple[int, str, str]:
    r = CliRunner(mix_stderr=False).invoke(cli, list(args))
    return r.exit_code, r.stdout, r.stderr


def _clip(tmp: Path, samples: np.ndarray, start: float, seconds: float, name: str = "clip.wav") -> Path:
    a = int(start * PIECE_RATE)
    x = samples[a : a + int(seconds * PIECE_RATE)]
    noise = np.random.default_rng(1).standard_normal(len(x)).astype(np.float32) * 0.3 * float(np.std(x))
    path = tmp / name
    write_wav(path, (x + noise).astype(np.float32), PIECE_RATE)
    return path


def test_explain_writes_png_and_svg_and_prints_evidence(built_store: Path, pieces: list[Piece], tmp_path: Path) -> None:
    clip = _clip(tmp_path, pieces[4].samples, 18.0, 8.0)
    code, out, _ = _run("explain", "--db", str(built_store), str(clip), "--out", str(tmp_path / "m.png"))
    assert code == 0, out
    assert pieces[4].title in out and "m.png" in out
    img = imread(io.BytesIO((tmp_path / "m.png").read_bytes()), format="png")
    assert img.shape[1] >= 800 and img[..., :3].std() > 0.05

    code, out, _ = _run("explain", "--db", str(built_store), str(clip), "--out", str(tmp_path / "m.svg"), "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["matched"] and doc["best"]["title"] == pieces[4].title
    assert abs(doc["best"]["offset_seconds"] - 18.0) < 0.5
    assert doc["best"]["verdict"] == "match" and doc["best"]["score"] >= doc["min_score"]
    assert doc["histogram"]["winner_votes"] == doc["best"]["votes"]
    ids = {el.attrib.get("id") for el in ET.parse(tmp_path / "m.svg").getroot().iter()}
    assert {"query-peaks", "reference-peaks", "agreeing-peaks", "winning-bin"} <= ids


def test_explain_summary_of_a_miss(built_store: Path, unknown_piece: np.ndarray, tmp_path: Path) -> None:
    clip = _clip(tmp_path, unknown_piece, 4.0, 8.0)
    code, out, _ = _run("explain", "--db", str(built_store), str(clip))
    assert code == 0, out
    lines = out.splitlines()
    assert "No match" in lines[0]
    assert len([x for x in lines if x.startswith("  - ")]) >= 1
    assert any(v in out for v in ("below min votes", "below the score threshold", "lost verification"))


def test_explain_refuses_bad_input(built_store: Path, tmp_path: Path) -> None:
    code, _, err = _run("explain", "--db", str(built_store), str(tmp_path / "none.wav"))
    assert code == 1 and "no such file" in err
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 100)
    code, _, err = _run("explain", "--db", str(built_store), str(junk))
    assert code == 1 and "not readable as audio" in err and "Traceback" not in err
    code, _, err = _run("explain", "--db", str(built_store), str(junk), "--out", str(tmp_path / "m.jpg"))
    assert code == 2 and "must end in .png or .svg" in err
    code, _, err = _run("explain", "--db", str(tmp_path / "nodb"), str(junk))
    assert code == 1 and "Traceback" not in err
    code, out, _ = _run("explain", "--help")
    assert code == 0 and all(o in out for o in ("--out", "--json", "--seconds", "--min-score", "--db"))


def test_scan_timeline(built_store: Path, pieces: list[Piece], tmp_path: Path) -> None:
    n = int(5.0 * PIECE_RATE)  # 5 s cross-fade
    a, b = pieces[1].samples, pieces[5].samples
    mix = np.zeros(len(a) + len(b) - n, dtype=np.float32)
    mix[: len(a)] += a * np.concatenate([np.ones(len(a) - n), np.linspace(1, 0, n)]).astype(np.float32)
    mix[len(a) - n :] += b * np.concatenate([np.linspace(0, 1, n), np.ones(len(b) - n)]).astype(np.float32)
    write_wav(tmp_path / "mix.wav", mix, PIECE_RATE)
    out_svg = tmp_path / "t.svg"
    code, out, err = _run(
        "scan", "--db", str(built_store), "--workers", "1", "--no-progress", str(tmp_path / "mix.wav"),
        "--json", "--timeline", str(out_svg),
    )  # fmt: skip
    assert code == 0, out + err
    assert [t["title"] for t in json.loads(out)["tracks"]] == [pieces[1].title, pieces[5].title]
    ids = {el.attrib.get("id") for el in ET.parse(out_svg).getroot().iter()}
    assert {"segment-0", "segment-1", "overlap-0"} <= ids and "segment-2" not in ids
    code, _, err = _run("scan", "--db", str(built_store), str(tmp_path / "mix.wav"), "--timeline", "t.gif")
    assert code == 2 and "must end in .png or .svg" in err
