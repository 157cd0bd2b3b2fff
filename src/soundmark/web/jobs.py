"""``/jobs`` (admin): the long-recording (enterprise) jobs, newest first, a page at a time, with
their progress, which ``static/jobs.js`` keeps current from ``/jobs.json``; ``/jobs/<id>``: one
job with its tracklist, and ``/jobs/<id>.csv`` the tracklist as CSV.

``/jobs/<id>`` is also the API's job status (``api/routes/enterprise.py``, mounted before the web
app): the page answers a browser's page request only (``BrowserPageRoute``, as ``/`` does) and
goes ahead of the API's route with the CSV download (``install``); every other request to
``/jobs/<id>`` gets the API's JSON as before. The reads are ``services/jobs.py``'s, on the pool.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from soundmark.api.state import app_state
from soundmark.audd.presenter import tracklist_csv
from soundmark.jobs import DONE
from soundmark.match.scan import clock
from soundmark.services.jobs import MAX_JOBS_PAGE, find_job, job_states, recent_jobs, tracklist
from soundmark.web.browser import BrowserPageRoute
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import visitor
from soundmark.web.tokens import to_login

PATH = "/jobs"
PER_PAGE = 25  # jobs on one page of /jobs
MAX_OFFSET = 10**9

router = APIRouter(include_in_schema=False)  # /jobs, /jobs.json
job_page = APIRouter(route_class=BrowserPageRoute, include_in_schema=False)  # /jobs/<id>, a browser's only
job_csv = APIRouter(include_in_schema=False)  # /jobs/<id>.csv


def when(timestamp: float) -> str:
    """A job's time as the page shows it (UTC, to the second)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _offset(text: str) -> int:
    text = text.strip()
    return min(int(text), MAX_OFFSET) if text.isdigit() and len(text) <= 12 else 0


@router.get(PATH)
async def jobs_page(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    offset = _offset(request.query_params.get("offset", ""))
    page = await app_state(request).db.aread(lambda c: recent_jobs(c, offset, PER_PAGE))
    return pages_of(request).render(request, "jobs.html", who, page=page, when=when, clock=clock)


@router.get(f"{PATH}.json")
async def jobs_states(request: Request) -> Response:
    """The state of the jobs ``id`` (repeated; at most ``MAX_JOBS_PAGE``): what jobs.js polls."""
    who = await visitor(request)
    if who.session is None:
        return secure(JSONResponse({"error": "log in as an admin"}, status_code=401), private=True)
    ids = request.query_params.getlist("id")[:MAX_JOBS_PAGE]
    states = await app_state(request).db.aread(lambda c: job_states(c, ids))
    body = {
        "jobs": [
            {"id": j.id, "status": j.status, "progress": round(j.progress, 4), "audio_seconds": j.audio_seconds,
             "analysed": clock(j.audio_seconds), "tracks": j.tracks, "finished": j.finished,
             "error": j.error_message or ""}
            for j in states
        ]
    }  # fmt: skip
    return secure(JSONResponse(body), private=True)


@job_page.get(PATH + "/{job_id}")
async def job_detail(request: Request, job_id: str) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    job = await app_state(request).db.aread(lambda c: find_job(c, job_id))
    if job is None:
        return pages_of(request).render(request, "job.html", who, status=404, job=None, job_id=job_id)
    entries = await app_state(request).db.aread(lambda c: tracklist(c, job)) if job.status == DONE else []
    return pages_of(request).render(request, "job.html", who, job=job, entries=entries, when=when, clock=clock)


@job_csv.get(PATH + "/{job_id}.csv")
async def job_tracklist_csv(request: Request, job_id: str) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    job = await app_state(request).db.aread(lambda c: find_job(c, job_id))
    if job is None or job.status != DONE:
        status = 404 if job is None else 409
        return pages_of(request).render(request, "job.html", who, status=status, job=job, job_id=job_id, entries=[],
                                        when=when, clock=clock, csv_refused=True)  # fmt: skip
    entries = await app_state(request).db.aread(lambda c: tracklist(c, job))
    headers = {"Content-Disposition": f'attachment; filename="tracklist-{job.id}.csv"'}
    response = Response(tracklist_csv(entries), media_type="text/csv; charset=utf-8", headers=headers)
    return secure(response, private=True)


def install(app: FastAPI) -> None:
    """Mount the Jobs pages; the job page and its CSV go ahead of every route mounted so far
    (the API's ``GET /jobs/{job_id}`` would otherwise take ``/jobs/<id>`` and ``/jobs/<id>.csv``)."""
    app.include_router(router)
    routes = app.router.routes
    mounted = len(routes)
    app.include_router(job_csv)
    app.include_router(job_page)
    ahead = routes[mounted:]
    del routes[mounted:]
    routes[0:0] = ahead
