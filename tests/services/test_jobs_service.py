"""The enterprise job use case on a real store: the queue cap, a node without a runner only
queues, and a node with one resumes and picks up what other nodes queued, running it to the end."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from soundmark.jobs import DONE, FAILED, QUEUED, JobRunner, JobStore
from soundmark.services.errors import ServiceError
from soundmark.services.jobs import JobService
from soundmark.settings import Settings
from support import Piece

PARAMS = {"skip_first_seconds": 0, "every": 0, "skip": 0, "limit": 0, "chunk_seconds": 12.0, "return": "",
          "market": "us", "accurate_offsets": False, "hop_seconds": 5.0}  # fmt: skip


def test_the_queue_cap_and_a_node_without_runner(store_copy: Path) -> None:
    settings = Settings(db=store_copy, max_queued_jobs=1)

    async def run() -> None:
        jobs = JobStore(store_copy)
        try:
            service = JobService(jobs, None, settings)
            job = await service.open("enterprise", PARAMS, None)
            with pytest.raises(ServiceError) as full:
                await service.open("enterprise", PARAMS, None)
            assert full.value.code == 611
            jobs.audio_path(job.id).write_bytes(b"audio")
            await service.start(job.id, "upload")
            stored = await service.get(job.id)
            assert stored is not None and stored.status == QUEUED and stored.source == "upload"  # nobody runs it
            with pytest.raises(RuntimeError):
                await service.resume()  # only a node that runs jobs resumes them
            await service.abandon(job.id, 501, "no audio")
            failed = await service.get(job.id)
            assert failed is not None and failed.status == FAILED and failed.error_code == 501
            assert not jobs.audio_path(job.id).exists()
            await service.open("enterprise", PARAMS, None)  # the failed job left the queue
        finally:
            jobs.close()

    asyncio.run(run())


def test_a_job_queued_by_an_api_node_is_picked_up_and_run_by_a_jobs_node(store_copy: Path, pieces: list[Piece]) -> None:
    settings = Settings(db=store_copy)

    async def run() -> None:
        api_jobs, worker_jobs = JobStore(store_copy), JobStore(store_copy)
        runner = JobRunner(worker_jobs, store_copy, max_jobs=1, scan_workers=1, max_seconds=3600)
        try:
            api = JobService(api_jobs, None, settings)
            job = await api.open("enterprise", PARAMS, None)
            shutil.copy(pieces[0].path, api_jobs.audio_path(job.id))
            await api.start(job.id, "upload")
            worker = JobService(worker_jobs, runner, settings)
            assert await worker.resume() == [job.id]  # queued with its audio: resumed at the jobs node's start
            pick_up = asyncio.create_task(worker.pick_up(0.1))
            second = await api.open("enterprise", PARAMS, None)  # queued while the jobs node runs
            shutil.copy(pieces[1].path, api_jobs.audio_path(second.id))
            await api.start(second.id, "upload")
            done = await asyncio.wait_for(api.wait(job.id), 300)  # the api node polls the row
            done2 = await asyncio.wait_for(api.wait(second.id), 300)
            pick_up.cancel()
            assert done.status == DONE and done2.status == DONE
            assert {s.track_id for s in done.segments()} and {s.track_id for s in done2.segments()}
            assert {s.track_id for s in done.segments()} != {s.track_id for s in done2.segments()}
        finally:
            await asyncio.to_thread(runner.close)
            api_jobs.close()
            worker_jobs.close()

    asyncio.run(run())
