"""AudD's enterprise endpoint: every catalog track in a long file, as 12-second chunks.

Served at ``/enterprise/`` and at ``/`` for hosts named ``enterprise.*`` (see methods.py). A
request becomes a job (jobs.py): the upload (kept on disk when large) or the downloaded ``url``
is moved into the job's folder and analysed in the background; the request waits for the result
as AudD's does, unless ``async=true``, which answers the job id at once. ``GET /jobs/<id>`` (and
``/enterprise/jobs/<id>``) shows a job's status, progress and result.

The answer is AudD's chunk list: for every scanned 12 s chunk (``skip_first_seconds``,
``every``, ``skip``, ``limit`` select them) that a track plays in, ``{offset, songs}`` where each
song carries its metadata, ``timecode`` (position in the song), ``score`` (0–100) and, with
``accurate_offsets``, ``start_offset``/``end_offset``: milliseconds from the chunk's start to
where the track starts and ends inside the chunk (0 and the chunk's length when it plays
through), so that a client computes the track's span in the file as AudD's SDKs do.
``response_type=csv`` answers the same list as ``text/csv``, one row per song of each chunk.

Parameters are parsed by ``EnterpriseParams`` (the typed layer): ``every``, ``skip`` and
``limit`` are whole numbers up to ``MAX_CHUNKS`` and ``skip_first_seconds`` lies within the
``max_job_hours`` a job analyses; anything else is AudD's error 50.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter
from pydantic import BeforeValidator, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from soundmark.api.auth import authorize
from soundmark.api.origin import base_url
from soundmark.api.params import ApiRequest
from soundmark.api.state import AppState, app_state
from soundmark.audd.errors import ApiError
from soundmark.audd.metadata import parse_return
from soundmark.audd.models import EnterpriseChunk, ErrorEnvelope, JobError, JobSuccess, JobView, wire
from soundmark.audd.presenter import enterprise_song, tracklist_entry
from soundmark.audd.typed import Flag, Int, Params, Text, parse
from soundmark.audio.fetch import fetch_url
from soundmark.catalog.models import Track
from soundmark.errors import SoundmarkError
from soundmark.jobs import DONE, FAILED, Job, JobRunner, JobStore
from soundmark.match.recognizer import format_timecode
from soundmark.net.addresses import AddressPolicy
from soundmark.services.jobs import JobService
from soundmark.services.runtime import Role

router = APIRouter()

CHUNK_SECONDS = 12.0
MAX_CHUNKS = 100_000  # bound of ``every``, ``skip`` and ``limit`` (100 000 chunks: almost two weeks)
MAX_SKIP_FIRST_SECONDS = 24 * 366 * 3600  # the largest settings.max_job_hours
CSV_COLUMNS = ("offset", "artist", "title", "album", "release_date", "label", "timecode", "score", "isrc", "upc",
               "song_link", "audio_id", "start_offset", "end_offset")  # fmt: skip


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class EnterpriseParams(Params):
    """What ``enterprise`` reads besides the audio (AudD's names and types)."""

    api_token: Text = ""
    url: Text = ""
    skip_first_seconds: Int = Field(0, ge=0, le=MAX_SKIP_FIRST_SECONDS)
    every: Int = Field(0, ge=0, le=MAX_CHUNKS)
    skip: Int = Field(0, ge=0, le=MAX_CHUNKS)
    limit: Int = Field(0, ge=0, le=MAX_CHUNKS)
    use_timecode: Flag = False
    accurate_offsets: Flag = False
    async_: Flag = Field(False, alias="async")
    return_: Text = Field("", alias="return")
    market: Text = Field("us", max_length=16)
    response_type: Annotated[Literal["json", "csv"], BeforeValidator(_lower)] = "json"


def url_timecode(url: str) -> float:
    """Start position named by a media URL's ``t``, ``time_continue`` or ``start`` parameter
    (``90``, ``90s``, ``1m30s``, ``1h2m3s``, ``1:30``); 0 when it names none."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    fragment = parse_qs(parts.fragment)
    for key in ("t", "time_continue", "start"):
        values = query.get(key) or fragment.get(key)
        if values:
            return _parse_time(values[0])
    return 0.0


def _parse_time(text: str) -> float:
    text = text.strip().lower()
    try:
        if ":" in text:
            total = 0.0
            for p in text.split(":"):
                total = total * 60 + float(p)
            return total
        if text and text[-1] in "hms":
            total, num = 0.0, ""
            for ch in text:
                if ch.isdigit() or ch == ".":
                    num += ch
                elif ch in "hms" and num:
                    total += float(num) * {"h": 3600, "m": 60, "s": 1}[ch]
                    num = ""
            return total
        return float(text)
    except ValueError:
        return 0.0


def job_params(p: EnterpriseParams, max_seconds: float) -> dict[str, Any]:
    """A job's parameters from the request's; ``max_seconds``: what a job analyses at most."""
    skip_first: float = p.skip_first_seconds
    if p.use_timecode and skip_first:
        raise ApiError(50, "`use_timecode` can't be combined with `skip_first_seconds`.")
    if p.use_timecode and p.url:
        skip_first = url_timecode(p.url)
        if not math.isfinite(skip_first) or skip_first < 0:
            raise ApiError(50, "the timecode of the `url` is not a valid position.")
    if skip_first > max_seconds:
        raise ApiError(
            50, f"`skip_first_seconds` is past the {max_seconds / 3600:g} hours of a recording this server analyses."
        )
    return {
        "skip_first_seconds": int(skip_first),
        "every": p.every,
        "skip": p.skip,
        "limit": p.limit,
        "chunk_seconds": CHUNK_SECONDS,
        "return": p.return_,
        "market": p.market or "us",
        "accurate_offsets": p.accurate_offsets,
    }


async def _store_audio(state: AppState, api: ApiRequest, dst: Path) -> str:
    """Put the request's audio at ``dst``; returns a description of the source."""
    s = state.settings
    if api.file_path is not None:
        await asyncio.to_thread(shutil.move, str(api.file_path), str(dst))
        api.file_path = None
        return "upload"
    if api.file is not None:
        data = api.file
        source = "upload"
    elif api.get("audio"):
        from soundmark.api.params import decode_base64_audio

        data = decode_base64_audio(api.params["audio"])
        source = "audio"
    elif api.get("url"):
        try:
            with dst.open("wb") as sink:  # streamed to the job's folder: memory stays flat
                await fetch_url(
                    api.get("url"), max_bytes=s.max_enterprise_download_bytes, timeout=s.download_timeout,
                    policy=AddressPolicy.from_settings(s), sink=sink,
                )  # fmt: skip
        except SoundmarkError as exc:
            if exc.code == 400:
                raise ApiError(400, f"the audio file is too big: {exc}.") from exc
            raise ApiError(501, f"no audio could be fetched from the url: {exc}.") from exc
        return api.get("url")
    else:
        raise ApiError(700)
    if len(data) > s.max_enterprise_bytes:
        raise ApiError(400, f"the audio file is too big. {s.max_enterprise_bytes // (1024 * 1024)} MB is the maximum.")
    await asyncio.to_thread(dst.write_bytes, data)
    return source


def _jobs(state: AppState) -> JobService:
    service: JobService = state.extras["jobs.service"]
    return service


async def enterprise(state: AppState, request: Request, api: ApiRequest) -> object:
    info = await authorize(state, request, api.get("api_token"), scope="recognize")
    jobs = _jobs(state)
    p = parse(EnterpriseParams, api.params)
    params = job_params(p, state.settings.max_job_hours * 3600)
    params["hop_seconds"] = state.settings.scan_hop_seconds
    job = await jobs.open("enterprise", params, info.id if info is not None else None)
    try:
        source = await _store_audio(state, api, jobs.jobs.audio_path(job.id))
    except BaseException as exc:
        await asyncio.shield(jobs.abandon(job.id, exc.code if isinstance(exc, ApiError) else 1000, str(exc)))
        raise
    finally:
        api.discard_file()
    await jobs.start(job.id, source)
    if p.async_:
        base = base_url(request, state.settings.public_url)
        return {"job_id": job.id, "status": "queued", "status_url": f"{base}/jobs/{job.id}"}
    finished = await jobs.wait(job.id)
    if finished.status == FAILED:
        raise ApiError(finished.error_code or 1000, finished.error_message)
    chunks = chunk_result(state, request, finished, await _tracks(state, finished))
    if p.response_type == "csv":
        return Response(chunks_csv(chunks), media_type="text/csv")
    return chunks


def chunks_csv(chunks: list[EnterpriseChunk]) -> str:
    """AudD's chunk list as CSV: a header, then one row per song of each chunk (best first)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for chunk in chunks:
        for song in chunk.songs:
            writer.writerow({"offset": chunk.offset, **wire(song)})
    return out.getvalue()


async def _tracks(state: AppState, job: Job) -> dict[int, Track]:
    """The catalog tracks of a job's segments (on the read pool)."""
    ids = {s.track_id for s in job.segments()}
    if not ids:
        return {}
    tracks: dict[int, Track] = await state.db.aread(lambda catalog: catalog.get_tracks(ids))
    return tracks


def chunk_result(state: AppState, request: Request, job: Job, tracks: dict[int, Track]) -> list[EnterpriseChunk]:
    """AudD's list of chunks with the songs playing in each (``tracks``: those of its segments)."""
    segments = job.segments()
    if not segments or not job.result:
        return []
    base = base_url(request, state.settings.public_url)
    p = job.params
    wanted, market, accurate = parse_return(p.get("return")), p.get("market") or "us", bool(p.get("accurate_offsets"))
    chunk = float(p.get("chunk_seconds") or CHUNK_SECONDS)
    out: list[EnterpriseChunk] = []
    for a, b in job.result.get("scanned", []):
        t = float(a)
        while t < float(b) - 0.5:
            end = min(t + chunk, float(b))
            songs = [
                enterprise_song(
                    s, tracks[s.track_id], t, end, base, accurate_offsets=accurate, wanted=wanted, market=market
                )
                for s in sorted(segments, key=lambda x: -x.score)
                if s.track_id in tracks and min(s.end, end) - max(s.start, t) >= min(1.0, (end - t) / 2)
            ]
            if songs:
                out.append(EnterpriseChunk(offset=format_timecode(t), songs=songs))
            t += chunk
    return out


def job_view(state: AppState, request: Request, job: Job, tracks: dict[int, Track]) -> JobView:
    view = JobView(job_id=job.id, status=job.status, progress=round(job.progress, 4), audio_seconds=job.audio_seconds,
                   created_at=job.created_at, updated_at=job.updated_at)  # fmt: skip
    if job.status == FAILED:
        view.error = JobError(error_code=job.error_code, error_message=job.error_message)
    if job.status == DONE and job.result is not None:
        segments = job.segments()
        base = base_url(request, state.settings.public_url)
        view.duration = job.result.get("duration")
        view.tracklist = [tracklist_entry(s, tracks.get(s.track_id), base) for s in segments]
        view.result = chunk_result(state, request, job, tracks)
    return view


@router.get("/jobs/{job_id}", summary="a long-recording job: status, progress, tracklist",
            responses={200: {"model": JobSuccess | ErrorEnvelope, "description": "the job, or error 50"}})  # fmt: skip
@router.get("/enterprise/jobs/{job_id}", include_in_schema=False)
async def get_job(request: Request, job_id: str) -> JSONResponse:
    state = app_state(request)
    job = await _jobs(state).get(job_id)
    if job is None:
        body = {"status": "error", "error": {"error_code": 50, "error_message": f"no job `{job_id}`."}}
        return JSONResponse(body)
    tracks = await _tracks(state, job) if job.status == DONE else {}
    return JSONResponse({"status": "success", "result": wire(job_view(state, request, job, tracks))})


HANDLERS = {"enterprise": enterprise}


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    """The job store on every node; the runner, the resumption of interrupted jobs and the
    pick-up of jobs other nodes queued only where the role runs jobs (``jobs``, ``all``)."""
    s = state.settings
    jobs = await asyncio.to_thread(JobStore, s.db, state.db)  # through the one writer and the read pool
    runner = None
    if Role.of(s).runs_jobs:
        runner = JobRunner(
            jobs, Path(s.db), max_jobs=s.max_jobs, scan_workers=s.scan_workers, max_seconds=s.max_job_hours * 3600,
            max_attempts=s.job_max_attempts, lease_seconds=s.job_lease_seconds,
        )  # fmt: skip
    service = JobService(jobs, runner, s)
    state.extras["jobs.service"] = service
    pick_up = None
    if runner is not None:
        await service.resume()
        pick_up = asyncio.create_task(service.pick_up(), name="job-pick-up")
    try:
        yield
    finally:
        if pick_up is not None:
            pick_up.cancel()
            with suppress(asyncio.CancelledError):
                await pick_up
        if runner is not None:
            await asyncio.to_thread(runner.close)
        jobs.close()
