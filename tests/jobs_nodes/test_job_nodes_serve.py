"""Real ``serve`` nodes over one PostgreSQL catalog and Redis index, each with a ``--db``
directory of its own: an ``--role api`` node accepts an enterprise upload and a ``--role jobs``
node runs it (the audio crosses through the catalog); a jobs node killed with SIGKILL in the
middle of a job leaves it to another, which finishes it with the whole tracklist."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jobs_cluster import SharedStore, mix_file
from live_server import Server, start_server, stop_server
from procs import alive, descendants

from soundmark.catalog.sql import PgConnection
from soundmark.jobs import DONE, RUNNING
from support import Piece, wait_for

REPEAT = 4  # the kill test's recording: the pieces 4 times over (16 minutes)


LEASE_SECONDS = 8.0  # SOUNDMARK_JOB_LEASE_SECONDS of the kill test's job nodes (default 20)


def _start(shared: SharedStore, name: str, role: str, log_dir: Path, env: dict[str, str] | None = None) -> Server:
    return start_server(shared.node(name), log_dir / f"{name}.log", "--role", role, "--anonymous-per-day", "1000",
                        env=shared.env | (env or {}))  # fmt: skip


def _lease_left(url: str, job_id: str) -> float:
    """Seconds the job's lease has left, by the database's clock."""
    conn = PgConnection(url)
    try:
        sql = "SELECT lease_until - extract(epoch from clock_timestamp())::double precision FROM jobs WHERE id = ?"
        return float(conn.execute(sql, (job_id,)).fetchone()[0])
    finally:
        conn.close()


def _pids(server: Server) -> set[str]:
    """The server process and its children: where its job runner's node id names its pid."""
    return {str(p) for p in (server.proc.pid, *descendants(server.proc.pid))}


def _job_row(url: str, job_id: str | None = None) -> dict[str, object]:
    conn = PgConnection(url)
    try:
        sql = "SELECT id, status, owner, attempts, progress FROM jobs"
        row = (conn.execute(sql + " WHERE id = ?", (job_id,)) if job_id else
               conn.execute(sql + " ORDER BY created_at DESC LIMIT 1")).fetchone()  # fmt: skip
        audio = conn.execute("SELECT COUNT(*) FROM job_audio WHERE job_id = ?", (row["id"],)).fetchone()[0]
        return {k: row[k] for k in ("id", "status", "owner", "attempts", "progress")} | {"chunks": audio}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def api_node(shared_store: SharedStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _start(shared_store, "api", "api", tmp_path_factory.mktemp("api-node"))
    yield server
    stop_server(server)


def test_an_upload_accepted_by_an_api_node_is_run_by_a_jobs_node(
    shared_store: SharedStore, api_node: Server, pieces: list[Piece], tmp_path: Path
) -> None:
    jobs_node = _start(shared_store, "jobs-one", "jobs", tmp_path)
    try:
        data = mix_file(pieces[:3], tmp_path / "mix.wav").read_bytes()
        r = httpx.post(f"{api_node.url}/enterprise/", files={"file": ("mix.wav", data)}, timeout=300).json()
        assert r["status"] == "success", r
        assert {song["title"] for chunk in r["result"] for song in chunk["songs"]} == {p.title for p in pieces[:3]}
        row = _job_row(shared_store.catalog_url)
        assert row["status"] == DONE and row["attempts"] == 1
        assert str(row["owner"]).split(":")[1] in _pids(jobs_node)  # the jobs node ran it, not the api node
        assert row["chunks"] == 0  # the audio left the catalog with the job's end
        assert not list((api_node.db / "jobs").iterdir()) and not list((jobs_node.db / "jobs").iterdir())
    finally:
        stop_server(jobs_node)


def test_a_job_node_killed_mid_job_leaves_the_job_to_another(
    shared_store: SharedStore, api_node: Server, pieces: list[Piece], tmp_path: Path
) -> None:
    lease = {"SOUNDMARK_JOB_LEASE_SECONDS": str(LEASE_SECONDS)}
    first = _start(shared_store, "jobs-first", "jobs", tmp_path, lease)
    second: Server | None = None
    try:
        data = mix_file(pieces, tmp_path / "long.wav", repeat=REPEAT).read_bytes()
        r = httpx.post(f"{api_node.url}/enterprise/", data={"async": "true"}, files={"file": ("long.wav", data)},
                       timeout=300).json()  # fmt: skip
        assert r["status"] == "success", r
        job_id = r["result"]["job_id"]

        def running_on_first() -> bool:
            row = _job_row(shared_store.catalog_url, job_id)
            return row["status"] == RUNNING and float(row["progress"]) > 0  # type: ignore[arg-type]

        wait_for("the first jobs node to run the job", running_on_first, timeout=120)
        owner = str(_job_row(shared_store.catalog_url, job_id)["owner"])
        assert owner.split(":")[1] in _pids(first)
        # The node's claim lasts the configured lease (renewed every quarter of it), not the default.
        assert 0 < _lease_left(shared_store.catalog_url, job_id) <= LEASE_SECONDS + 0.5
        second = _start(shared_store, "jobs-second", "jobs", tmp_path, lease)
        # The second node leaves a job under a live lease alone.
        assert _job_row(shared_store.catalog_url, job_id)["owner"] == owner
        victims = [first.proc.pid, *descendants(first.proc.pid)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        first.proc.wait(timeout=30)
        wait_for("the killed node's processes to end", lambda: not any(alive(p) for p in victims), timeout=60)
        row = _job_row(shared_store.catalog_url, job_id)
        assert row["status"] == RUNNING and row["owner"] == owner  # killed mid-job: nobody ended it

        def done() -> dict[str, object] | None:
            view = httpx.get(f"{api_node.url}/jobs/{job_id}", timeout=10).json()["result"]
            assert view["status"] in ("queued", "running", DONE), view
            return view if view["status"] == DONE else None

        view = wait_for("the second node to finish the job", done, timeout=600)
        assert isinstance(view, dict)
        row = _job_row(shared_store.catalog_url, job_id)
        assert str(row["owner"]).split(":")[1] in _pids(second) and row["attempts"] == 2
        assert row["chunks"] == 0
        titles = [t["title"] for t in view["tracklist"]]
        assert set(titles) == {p.title for p in pieces}
        assert len(titles) >= len(pieces) * REPEAT - 2  # the whole recording, not the part after the kill
        assert view["progress"] == 1.0
    finally:
        if second is not None:
            stop_server(second)
        stop_server(first)
