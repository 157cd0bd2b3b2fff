"""Claiming a queued job (jobs.py): of two runners given the same queued job — two processes, each
with its own connection to one store, as two ``serve --role jobs`` nodes — only one runs it."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import shutil
from pathlib import Path

from soundmark.catalog.sqlite import Catalog
from soundmark.jobs import QUEUED, RUNNING, JobStore, run_job
from support import Piece

JOBS = 40


def _claim_all(
    root: Path, ids: list[str], start: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue[list[str]]
) -> None:
    jobs = JobStore(root)  # this process's own connection
    try:
        start.wait()  # both processes race for the same jobs, in the same order
        out.put([job_id for job_id in ids if jobs.claim(job_id)])
    finally:
        jobs.close()


def test_two_processes_claiming_the_same_queued_jobs_take_each_once(tmp_path: Path) -> None:
    Catalog(tmp_path).close()
    jobs = JobStore(tmp_path)
    ids = [jobs.create("enterprise", "upload", {}).id for _ in range(JOBS)]
    ctx = multiprocessing.get_context("fork")
    start, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(tmp_path, ids, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=120), out.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(claimed[0] + claimed[1]) == sorted(ids)  # every job taken, none twice
    assert not set(claimed[0]) & set(claimed[1])
    for job_id in ids:
        job = jobs.get(job_id)
        assert job is not None and job.status == RUNNING and job.attempts == 1  # one start counted
    jobs.close()


def test_a_job_is_claimed_only_while_queued(tmp_path: Path) -> None:
    Catalog(tmp_path).close()
    jobs = JobStore(tmp_path)
    job = jobs.create("enterprise", "upload", {})
    assert jobs.claim(job.id) and not jobs.claim(job.id)
    jobs.stop_attempt(job.id)  # a clean stop queues it again: claimable again
    again = jobs.get(job.id)
    assert again is not None and again.status == QUEUED and again.attempts == 0
    assert jobs.claim(job.id)
    jobs.update(job.id, status="done")
    assert not jobs.claim(job.id) and not jobs.claim("no-such-job")
    jobs.close()


def test_run_job_leaves_a_job_another_runner_claimed(store_copy: Path, pieces: list[Piece]) -> None:
    ours, theirs = JobStore(store_copy), JobStore(store_copy)
    try:
        job = ours.create("enterprise", "upload", {"chunk_seconds": 12.0})
        shutil.copy(pieces[0].path, ours.audio_path(job.id))
        assert theirs.claim(job.id)  # the other node took it first
        run_job(ours, store_copy, job.id, 1, max_seconds=3600)
        after = ours.get(job.id)
        assert after is not None and after.status == RUNNING and after.attempts == 1 and after.result is None
        assert ours.audio_path(job.id).exists()  # the other runner's input is left alone
    finally:
        ours.close()
        theirs.close()
