"""Jobs over several nodes of one PostgreSQL catalog, in this process: claims that exactly one
node wins, leases that run out, the poison-job guard across nodes, and the job audio that an
accepting node shares through the catalog and a job node reads back."""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
from pathlib import Path

from jobs_cluster import SharedStore, mix_file

from soundmark.catalog.models import Track
from soundmark.catalog.sql import PgConnection
from soundmark.catalog.sqlite import Catalog
from soundmark.fingerprint.params import FingerprintParams
from soundmark.job_audio import CHUNK_BYTES
from soundmark.jobs import DONE, FAILED, QUEUED, RUNNING, JobRunner, JobStore
from soundmark.services.jobs import job_states, recent_jobs
from soundmark.store import Store
from support import Piece

JOBS = 30


def _claim_all(
    node: Path, owner: str, ids: list[str], start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:
    jobs = JobStore(node)  # this process's own connection to the shared catalog
    try:
        start.wait()
        out.put((owner, [job_id for job_id in ids if jobs.claim(job_id, owner)]))
    finally:
        jobs.close()


def _rows(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = PgConnection(url)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def test_two_nodes_claiming_the_same_jobs_take_each_once(shared_store: SharedStore) -> None:
    a, b = shared_store.node("claim-a"), shared_store.node("claim-b")
    jobs = JobStore(a)
    try:
        ids = [jobs.create("enterprise", "upload", {}).id for _ in range(JOBS)]
        ctx = multiprocessing.get_context("spawn")  # no connection inherited across the fork
        start, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_claim_all, args=(d, name, ids, start, out)) for d, name in ((a, "A"), (b, "B"))]
        for p in procs:
            p.start()
        claimed = dict([out.get(timeout=120), out.get(timeout=120)])
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert sorted(claimed["A"] + claimed["B"]) == sorted(ids)  # every job taken, none twice
        for job_id in ids:
            job = jobs.get(job_id)
            assert job is not None and job.status == RUNNING and job.attempts == 1
            assert job.owner == ("A" if job_id in claimed["A"] else "B")
    finally:
        jobs.close()


def test_a_lease_keeps_other_nodes_off_until_it_runs_out(shared_store: SharedStore) -> None:
    a, b = JobStore(shared_store.node("lease-a")), JobStore(shared_store.node("lease-b"))
    try:
        job = a.create("enterprise", "upload", {})
        assert a.claim(job.id, "A", lease_seconds=600)
        assert not b.claim(job.id, "B")  # A's lease is live
        assert a.renew("A", 600) >= 1 and a.progress(job.id, "A", 0.5, 10.0)
        a.update(job.id, lease_until=0.0)  # A stopped renewing (died) and its lease ran out
        assert b.claim(job.id, "B")
        # A learns it lost the job: its progress and its outcome are refused.
        assert not a.progress(job.id, "A", 0.9, 20.0)
        assert not a.finish(job.id, "A", status=DONE, progress=1.0, result={"segments": []})
        held = b.get(job.id)
        assert held is not None and held.status == RUNNING and held.owner == "B" and held.attempts == 2
        assert held.progress == 0  # a new run starts from the beginning
        a.stop_attempt(job.id, "A")  # A's late clean stop does not take the job from B either
        assert (b.get(job.id) or held).owner == "B"
        assert b.finish(job.id, "B", status=DONE, progress=1.0, result={"segments": []})
        done = a.get(job.id)
        assert done is not None and done.status == DONE and not a.claim(job.id, "A")
    finally:
        a.close()
        b.close()


def test_the_poison_guard_holds_across_nodes(shared_store: SharedStore, tmp_path: Path) -> None:
    a, b, c = (JobStore(shared_store.node(f"poison-{n}")) for n in "abc")
    try:
        job = a.create("enterprise", None, {})
        a.audio_path(job.id).write_bytes(b"RIFF" + os.urandom(1000))
        a.share_audio(job.id)
        a.update(job.id, source="upload")
        for store, node in ((a, "A"), (b, "B")):  # each node dies during its run
            assert store.claim(job.id, node, max_attempts=2)
            store.update(job.id, lease_until=0.0)
        assert not c.claim(job.id, "C", max_attempts=2)
        failed = c.get(job.id)
        assert failed is not None and failed.status == FAILED and "not retried" in (failed.error_message or "")
        assert failed.attempts == 2
        assert _rows(shared_store.catalog_url, "SELECT seq FROM job_audio WHERE job_id = ?", job.id) == []
    finally:
        for s in (a, b, c):
            s.close()


def test_job_audio_goes_through_the_catalog_in_bounded_chunks(shared_store: SharedStore) -> None:
    api, worker = JobStore(shared_store.node("audio-api")), JobStore(shared_store.node("audio-jobs"))
    try:
        job = api.create("enterprise", None, {})
        data = os.urandom(2 * CHUNK_BYTES + 12345)
        api.audio_path(job.id).write_bytes(data)
        api.share_audio(job.id)
        assert not api.audio_path(job.id).exists()  # the accepting node keeps nothing
        sql = "SELECT seq, octet_length(data) FROM job_audio WHERE job_id = ? ORDER BY seq"
        sizes = _rows(shared_store.catalog_url, sql, job.id)
        assert sizes == [(0, CHUNK_BYTES), (1, CHUNK_BYTES), (2, 12345)]
        api.update(job.id, source="upload")
        assert worker.claim(job.id, "W")
        copy = worker.audio.checkout(job.id)
        assert copy is not None and copy.parent == worker.dir and copy.read_bytes() == data
        worker.audio.release(copy)
        assert not copy.exists()
        assert worker.finish(job.id, "W", status=FAILED, error_code=1000, error_message="test")
        assert _rows(shared_store.catalog_url, "SELECT seq FROM job_audio WHERE job_id = ?", job.id) == []
        # An upload that fails is discarded: its rows go too.
        gone = api.create("enterprise", None, {})
        api.audio_path(gone.id).write_bytes(data[:100])
        api.share_audio(gone.id)
        api.discard_audio(gone.id)
        assert _rows(shared_store.catalog_url, "SELECT seq FROM job_audio WHERE job_id = ?", gone.id) == []
        assert worker.audio.checkout(gone.id) is None
    finally:
        api.close()
        worker.close()


def test_a_job_given_to_two_runners_is_run_by_one(shared_store: SharedStore, pieces: list[Piece]) -> None:
    a, b = shared_store.node("run-a"), shared_store.node("run-b")
    api = JobStore(shared_store.node("run-api"))
    stores = [JobStore(a), JobStore(b)]
    runners = [JobRunner(s, d, max_jobs=1, scan_workers=1, max_seconds=3600, node_id=n, max_attempts=2)
               for s, d, n in zip(stores, (a, b), ("A", "B"), strict=True)]  # fmt: skip
    try:
        job = api.create("enterprise", None, {"chunk_seconds": 12.0})
        mix_file(pieces[:2], api.audio_path(job.id))
        api.share_audio(job.id)
        api.update(job.id, source="upload")

        async def both() -> None:
            await asyncio.gather(*(r.submit(job.id) for r in runners))

        asyncio.run(both())
        done = api.get(job.id)
        assert done is not None and done.status == DONE and done.attempts == 1 and done.owner in ("A", "B")
        titles = {p.title for p in pieces[:2]}
        found = {t.meta.title for t in _tracks(shared_store, {s.track_id for s in done.segments()})}
        assert found == titles
        assert _rows(shared_store.catalog_url, "SELECT seq FROM job_audio WHERE job_id = ?", job.id) == []
        assert not [f for d in (a, b) for f in (d / "jobs").iterdir()]  # no temporary copy left
    finally:
        for r in runners:
            r.close()
        for s in (*stores, api):
            s.close()


def _tracks(shared: SharedStore, ids: set[int]) -> list[Track]:
    with Store(shared.root / "ingest", FingerprintParams()) as store:
        return list(store.catalog.get_tracks(ids).values())


def test_a_clean_stop_gives_the_job_back_at_once(shared_store: SharedStore, pieces: list[Piece]) -> None:
    """A stopping node queues its job again (no lease to wait for), its start not counted."""
    node = shared_store.node("stop-a")
    jobs = JobStore(node)
    try:
        job = jobs.create("enterprise", None, {"chunk_seconds": 12.0})
        shutil.copy(pieces[0].path, jobs.audio_path(job.id))
        jobs.share_audio(job.id)
        jobs.update(job.id, source="upload")
        assert jobs.claim(job.id, "A")
        jobs.stop_attempt(job.id, "A")
        again = jobs.get(job.id)
        assert again is not None and again.status == QUEUED and again.owner is None and again.attempts == 0
        assert jobs.claim(job.id, "B", max_attempts=1)
    finally:
        jobs.close()


def test_the_jobs_pages_reads_work_on_postgresql(shared_store: SharedStore) -> None:
    """The Jobs page's list counts a result's segments in SQL (``json_array_length`` per dialect)."""
    node = shared_store.node("pages")
    jobs = JobStore(node)
    catalog = Catalog(node, readonly=True)
    try:
        job = jobs.create("enterprise", "upload", {})
        segment = {"track_id": 1, "start": 0.0, "end": 12.0, "score": 50.0, "offset": 0.0}
        jobs.update(job.id, status=DONE, result={"segments": [segment, segment], "scanned": [[0.0, 24.0]]})
        empty = jobs.create("enterprise", "upload", {})
        page = recent_jobs(catalog, 0, 100)
        assert {s.id: s.tracks for s in page.jobs if s.id in (job.id, empty.id)} == {job.id: 2, empty.id: 0}
        assert [s.tracks for s in job_states(catalog, [job.id])] == [2]
    finally:
        catalog.close()
        jobs.close()


def test_an_upload_its_node_never_finished_is_failed_and_its_chunks_go(shared_store: SharedStore) -> None:
    jobs = JobStore(shared_store.node("stale"))
    try:
        stale, fresh = jobs.create("enterprise", None, {}), jobs.create("enterprise", None, {})
        for job in (stale, fresh):  # chunks in the catalog, but the node died before the job's start
            jobs.audio_path(job.id).write_bytes(os.urandom(1000))
            jobs.share_audio(job.id)
        jobs.update(stale.id, created_at=1.0)
        assert not jobs.claim(stale.id, "A")  # never claimed: its audio may be incomplete
        assert jobs.fail_stale_uploads() == 1  # (a job node's start and its pick-up rounds run this)
        failed, waiting = jobs.get(stale.id), jobs.get(fresh.id)
        assert failed is not None and failed.status == FAILED and "never finished" in (failed.error_message or "")
        assert waiting is not None and waiting.status == QUEUED  # its upload may still be under way
        chunks = "SELECT job_id FROM job_audio WHERE job_id IN (?, ?)"
        assert _rows(shared_store.catalog_url, chunks, stale.id, fresh.id) == [(fresh.id,)]
    finally:
        jobs.close()
