"""Several soundmark processes over one PostgreSQL catalog and one Redis Cluster index: API nodes
answer alike, writers on several nodes add at once, and a killed writer leaves nothing half-visible."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import audd
import httpx
import pytest
from live_server import HostRewrite, Server, start_server, stop_server
from nodes_cluster import Cluster, write_manifest

from soundmark.demo import compose_piece, write_wav
from soundmark.errors import StoreError
from support import PIECE_RATE, Piece, wait_for


def clip(piece: Piece, folder: Path, start: float = 10.0, seconds: float = 6.0) -> Path:
    path = folder / f"clip-{piece.seed}-{start:g}.wav"
    a = int(start * PIECE_RATE)
    write_wav(path, piece.samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE)
    return path


@pytest.fixture(scope="module")
def api_nodes(cluster: Cluster) -> Iterator[list[Server]]:
    """Two `serve --role api` processes, each with its own directory, over the shared store."""
    servers = []
    try:
        for name in ("api-a", "api-b"):
            db = cluster.node_dir(name)
            servers.append(start_server(db, cluster.root / f"{name}.log", "--role", "api", env=cluster.env))
        yield servers
    finally:
        for s in servers:
            stop_server(s)


def test_a_node_directory_holds_only_where_the_catalog_is(cluster: Cluster, api_nodes: list[Server]) -> None:
    names = {p.name for p in api_nodes[0].db.iterdir()}
    assert "catalog.url" in names and "catalog.sqlite" not in names
    assert not {"segments", "catalog.sqlite-wal"} & names


def test_the_sdk_recognises_through_either_api_node(
    cluster: Cluster, api_nodes: list[Server], pieces: list[Piece], tmp_path: Path
) -> None:
    token = cluster.cli("token", "create", "--name", "sdk").stdout.strip().splitlines()[-1]
    for i, server in enumerate(api_nodes):
        piece = pieces[i + 1]
        with httpx.Client(transport=HostRewrite(server.url), timeout=60) as http:
            result = audd.AudD(token, httpx_client=http, max_retries=1).recognize(str(clip(piece, tmp_path, 12.0)))
        assert result is not None and result.title == piece.title and result.artist == "Test Band"
        assert result.timecode == "00:12"
    # The usage of the one token was counted in the one catalog, whichever node answered.
    listed = [json.loads(line) for line in cluster.cli("token", "list", "--json").stdout.splitlines()]
    assert next(t for t in listed if t["name"] == "sdk")["used_this_month"] >= 2


def test_a_track_added_on_one_node_is_found_on_the_others(
    cluster: Cluster, api_nodes: list[Server], tmp_path: Path
) -> None:
    x = compose_piece(777, 40.0, PIECE_RATE)
    path = tmp_path / "late.wav"
    write_wav(path, x, PIECE_RATE)
    manifest = tmp_path / "late.csv"
    manifest.write_text(f"path,title,artist\n{path},Late Arrival,Node C\n")
    cluster.cli("add", "--quiet", "--processes", "1", "--manifest", str(manifest), node="writer-c")
    query = tmp_path / "late-clip.wav"
    write_wav(query, x[int(15 * PIECE_RATE) : int(21 * PIECE_RATE)], PIECE_RATE)
    for server in api_nodes:
        with query.open("rb") as fh:
            body = httpx.post(server.url, files={"file": fh}, data={"api_token": "", "return": ""}, timeout=60).json()
        assert body["status"] == "success" and body["result"]["title"] == "Late Arrival", body


def test_writers_on_two_nodes_add_at_once(empty_cluster: Cluster, pieces: list[Piece]) -> None:
    c = empty_cluster
    halves = [pieces[: len(pieces) // 2], pieces[len(pieces) // 2 :]]
    procs = []
    for i, half in enumerate(halves):
        folder = c.root / f"m{i}"
        folder.mkdir(parents=True)
        cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(c.node_dir(f"w{i}")), "--quiet",
               "--processes", "1", "--manifest", str(write_manifest(folder, half))]  # fmt: skip
        env = {**c.env, "SOUNDMARK_BATCH_TRACKS": "1"}
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    listed = [json.loads(line) for line in c.cli("list", "--json").stdout.splitlines()]
    assert sorted(t["title"] for t in listed) == sorted(p.title for p in pieces)
    assert len({t["id"] for t in listed}) == len(pieces)
    _assert_every_track_whole(c, pieces)


def test_a_writer_killed_mid_batch_leaves_nothing_half_visible(
    empty_cluster: Cluster, pieces: list[Piece], tmp_path: Path
) -> None:
    c = empty_cluster
    cmd = [sys.executable, "-m", "soundmark", "add", "--db", str(c.node_dir("killed")), "--quiet",
           "--processes", "1", "--manifest", str(write_manifest(tmp_path, pieces))]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env={**c.env, "SOUNDMARK_BATCH_TRACKS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for("a first track committed", lambda: _count(c) >= 1, timeout=120, poll=0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _assert_every_track_whole(c, pieces)
    # The next writer cleans up after it and finishes the job.
    c.cli("add", "--quiet", "--processes", "1", "--manifest", str(write_manifest(tmp_path, pieces)), node="next")
    assert _count(c) == len(pieces)
    _assert_every_track_whole(c, pieces)


def _count(c: Cluster) -> int:
    try:
        store = c.open_store()
    except StoreError:  # nothing committed yet
        return 0
    with store:
        return store.catalog.totals()[0]


def _assert_every_track_whole(c: Cluster, pieces: list[Piece]) -> None:
    """Every track the catalog lists has all its postings live in the index, and the index has
    no live track the catalog does not list."""
    deadline = time.monotonic() + 5
    with c.open_store() as store:
        while True:
            store.refresh(force=True)
            tracks = store.catalog.list_tracks()
            stats = store.index.stats()
            if stats.postings == sum(t.n_hashes for t in tracks) or time.monotonic() > deadline:
                break
        assert stats.postings == sum(t.n_hashes for t in tracks)
        titles = {p.title: p for p in pieces}
        for t in tracks:
            assert t.meta.title in titles
            assert len(store.index.track_peaks(t.id)) > 0


def test_the_python_api_opens_the_shared_store(cluster: Cluster, pieces: list[Piece], tmp_path: Path) -> None:
    import soundmark

    node = cluster.node_dir("python")
    with soundmark.open(node, catalog_url=cluster.catalog_url, create=False) as sm:
        match = sm.recognize(str(clip(pieces[4], tmp_path, 20.0)))
        assert match is not None and match.title == pieces[4].title
        assert len(sm.tracks()) >= len(pieces)
    with soundmark.open(node, create=False) as again:  # the directory now records where the catalog is
        assert len(again.tracks()) >= len(pieces)
