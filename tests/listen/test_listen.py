"""`soundmark listen` for real: a subprocess records a PulseAudio null sink's monitor (device
`pulse`, PULSE_SOURCE=<sink>.monitor) through PortAudio while `paplay` plays catalog pieces into
the sink; against the local store and against a live `soundmark serve` (its /ws/ endpoint)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from live_server import Server, free_port
from pulse import Pulse

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece, wait_for

HUMAN = re.compile(r"^pulse: Test Band - (Piece \d+) at \d\d:\d\d \(score [\d.]+, track \d+\)$")


def clip(tmp: Path, name: str, *parts: np.ndarray) -> Path:
    path = tmp / name
    write_wav(path, np.concatenate(parts), PIECE_RATE)
    return path


def cut(piece: Piece, start: float, seconds: float) -> np.ndarray:
    a = int(start * PIECE_RATE)
    return piece.samples[a : a + int(seconds * PIECE_RATE)]


def listen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "soundmark", "listen", *args]


def run_listen(pulse: Pulse, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(listen_cmd(*args), env=pulse.env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture()
def player(pulse: Pulse) -> Pulse:
    """The daemon, with whatever a test played stopped afterwards."""
    yield pulse
    pulse.stop_players()


def test_list_devices_shows_the_pulse_device(player: Pulse) -> None:
    out = run_listen(player, "--list-devices")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["index", "name", "in", "rate"]
    rows = [line.lstrip("*").split() for line in lines[1:]]  # index, name (may hold spaces), in, rate, Hz
    pulse = next(r for r in rows if " ".join(r[1:-3]) == "pulse")
    assert pulse[0].isdigit() and int(pulse[-3]) > 0 and pulse[-1] == "Hz"
    assert sum(line.startswith("*") for line in lines[1:]) == 1  # the default, marked once


def test_a_bad_device_is_a_clear_error(player: Pulse, built_store: Path) -> None:
    for spec, said in (("no-such-device", "no input device matches 'no-such-device'"),
                       ("4242", "no input device has index 4242")):  # fmt: skip
        out = run_listen(player, "--db", str(built_store), "--device", spec)
        assert out.returncode == 2, (spec, out)
        assert said in out.stderr and "--list-devices" in out.stderr
        assert "Traceback" not in out.stderr and out.stdout == ""


def test_one_shot_recognises_what_the_sink_plays(player: Pulse, built_store: Path, pieces: list[Piece],
                                                 tmp_path: Path) -> None:  # fmt: skip
    piece = pieces[1]
    player.play(clip(tmp_path, "a.wav", cut(piece, 10.0, 25.0)))
    out = run_listen(player, "--db", str(built_store), "--device", "pulse", "--json")
    assert out.returncode == 0, out
    line = json.loads(out.stdout)
    assert set(line) == {"device", "status", "result", "elapsed_ms"}
    assert line["device"] == "pulse" and line["status"] == "success"
    r = line["result"]
    assert r["title"] == piece.title and r["artist"] == "Test Band" and r["score"] >= 3
    assert 10.0 <= r["offset"] <= 25.0  # somewhere in the part played (the device opens after paplay starts)

    human = run_listen(player, "--db", str(built_store), "--device", "pul")  # a part of the name
    assert human.returncode == 0, human
    m = HUMAN.match(human.stdout.strip())
    assert m is not None and m.group(1) == piece.title, human.stdout


def test_one_shot_without_a_match_exits_1(player: Pulse, built_store: Path, unknown_piece: np.ndarray,
                                          tmp_path: Path) -> None:  # fmt: skip
    player.play(clip(tmp_path, "unknown.wav", unknown_piece[: 20 * PIECE_RATE]))
    out = run_listen(player, "--db", str(built_store), "--device", "pulse", "--seconds", "6")
    assert out.returncode == 1, out
    assert out.stdout.strip() == "pulse: no match"
    # 6 s, not 3: on this 6-track generated catalog a 3 s capture of the looped unknown piece is at
    # times answered at score ~3.1 (at the base commit too, 1 of 2 runs): a known chance match of short
    # synthetic captures, left to the issue-13 work on the null (benchmarks/LOG.md), not this test's subject.
    out = run_listen(player, "--db", str(built_store), "--device", "pulse", "--seconds", "6", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["result"] is None


def test_continuous_prints_each_song_in_order_and_keeps_now_playing(
    player: Pulse, built_store: Path, pieces: list[Piece], tmp_path: Path
) -> None:
    a, b = pieces[2], pieces[3]
    wav = clip(tmp_path, "two.wav", cut(a, 5.0, 14.0), cut(b, 12.0, 14.0))
    now = tmp_path / "overlay" / "now.txt"
    out_path = tmp_path / "out.jsonl"
    with out_path.open("w") as out, (tmp_path / "err.txt").open("w") as err:
        proc = subprocess.Popen(
            listen_cmd("--db", str(built_store), "--device", "pulse", "--continuous", "--json",
                       "--now-playing", str(now)),
            env=player.env, stdout=out, stderr=err, text=True,
        )  # fmt: skip
    try:
        wait_for("the now-playing file (created empty)", now.exists, timeout=30)
        assert now.read_text() == ""
        player.play(wav)
        shown: list[str] = []  # the file's successive contents
        deadline = time.monotonic() + 60
        while len(shown) < 2 and time.monotonic() < deadline:
            text = now.read_text()  # replaced atomically: a whole line or empty, never half of one
            if text and shown[-1:] != [text]:
                shown.append(text)
            time.sleep(0.1)
        starts = lambda: [e for e in events(out_path) if e["event"] == "start"]  # noqa: E731
        wait_for("both songs reported", lambda: len(starts()) >= 2, timeout=20)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        rc = proc.wait(timeout=30)
    err_text = (tmp_path / "err.txt").read_text()
    assert rc == 130, err_text
    assert "Traceback" not in err_text
    got = [(e["event"], e["result"]["title"]) for e in events(out_path)]
    assert got == [("start", a.title), ("end", a.title), ("start", b.title), ("end", b.title)], got
    for e in events(out_path):
        assert e["device"] == "pulse" and e["status"] == "success" and e["result"]["artist"] == "Test Band"
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", e["timestamp"])
    assert next(e["play_length"] for e in events(out_path) if e["event"] == "end") >= 8
    assert shown[:2] == [f"Test Band — {a.title}", f"Test Band — {b.title}"], shown
    assert now.read_text() == ""  # nothing plays once listening ended


def events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_through_a_server_gives_the_same_output(player: Pulse, built_store: Path, server: Server,
                                                pieces: list[Piece], tmp_path: Path) -> None:  # fmt: skip
    piece = pieces[4]
    token = server.token("listen")
    player.play(clip(tmp_path, "b.wav", cut(piece, 8.0, 30.0)))
    remote = run_listen(player, "--server", server.url, "--token", token, "--device", "pulse", "--json")
    local = run_listen(player, "--db", str(built_store), "--device", "pulse", "--json")
    assert remote.returncode == 0 and local.returncode == 0, (remote, local)
    r, lo = json.loads(remote.stdout), json.loads(local.stdout)
    assert set(r) == set(lo) and set(r["result"]) - {"alternatives"} == set(lo["result"]) - {"alternatives"}
    for key in ("title", "artist", "album", "track_id", "speed", "pitch"):
        assert r["result"][key] == lo["result"][key], key
    assert r["result"]["title"] == piece.title and r["result"]["score"] >= 3

    human = run_listen(player, "--server", server.url, "--token", token, "--device", "pulse")
    assert human.returncode == 0, human
    m = HUMAN.match(human.stdout.strip())
    assert m is not None and m.group(1) == piece.title, human.stdout


def test_server_errors_are_clear(player: Pulse, server: Server, pieces: list[Piece], tmp_path: Path) -> None:
    player.play(clip(tmp_path, "c.wav", cut(pieces[0], 5.0, 20.0)))
    refused = run_listen(player, "--server", server.url, "--token", "not-a-token", "--device", "pulse")
    assert refused.returncode == 2, refused
    assert "the server refused" in refused.stderr and "code 900" in refused.stderr
    down = run_listen(player, "--server", f"http://127.0.0.1:{free_port()}", "--device", "pulse")
    assert down.returncode == 2 and "cannot reach the server's WebSocket" in down.stderr
    for out in (refused, down):
        assert "Traceback" not in out.stderr and out.stdout == ""
