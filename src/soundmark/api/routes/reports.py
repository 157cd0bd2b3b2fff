"""Airplay reports over HTTP (admin only): ``GET /reports.json``, ``/reports.csv``, ``/reports.pdf``.

Parameters: ``from`` and ``to`` (``YYYY-MM-DD``, the range ``[from, to)``, at most 366 days),
``radio_id`` (one station), ``tz`` (the zone days are counted in; UTC), ``api_token`` (a token
with the ``admin`` scope). ``/reports.json`` takes ``top`` (tracks listed, 1-1000) and pages the
play log with ``offset`` and ``limit`` (at most 1000 plays a page); ``/reports.csv`` is the whole
play log, or with ``kind=tracks`` the per-track summary; ``/reports.pdf`` the report with its
chart (``top`` tracks). The rules and the numbers are services/reports.py's; every format shares
one preamble (``_report_route``: parameters, admin token, range), and the CSV and PDF downloads
are the web app's too (``web/reports.py``, behind its admin session).

Errors are AudD's bodies (``{"status":"error","error":{...}}``) with an HTTP status a download
client notices: 400 for a bad parameter (50), 401 without a valid token (900), 403 for a token
without the ``admin`` scope (904). Checking the token charges nothing to its quota.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Literal

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from soundmark.api.auth import authorize
from soundmark.api.origin import operator
from soundmark.api.state import AppState, app_state
from soundmark.audd.errors import ApiError, RequestEcho, error_body
from soundmark.audd.typed import Int, OptionalId, Params, Text, parse
from soundmark.services.errors import ServiceError
from soundmark.services.reports import ReportRange, ReportService

router = APIRouter()

ADMIN_SCOPE = "admin"
MAX_PAGE = 1000  # plays of the log in one JSON answer
MAX_TOP = 1000
SPOOL_BYTES = 8 << 20  # a CSV answer kept in memory up to this size, then in a temporary file
_STATUS = {50: 400, 900: 401, 904: 403}


class ReportParams(Params):
    api_token: Text = ""
    start: Text = Field("", alias="from")
    end: Text = Field("", alias="to")
    radio_id: OptionalId = None
    tz: Text = "UTC"
    top: Int = Field(20, ge=1, le=MAX_TOP)
    offset: Int = Field(0, ge=0)
    limit: Int = Field(100, ge=0, le=MAX_PAGE)
    kind: Literal["plays", "tracks"] = "plays"


ReportHandler = Callable[["ReportQuery"], Awaitable[Response]]


@dataclass(frozen=True)
class ReportQuery:
    """An admin's report request, checked: its parameters, its range and the service to ask."""

    params: ReportParams
    range: ReportRange
    service: ReportService


def report_range(start: str, end: str, radio_id: int | str | None, tz: str = "UTC") -> ReportRange:
    """The range of a request's ``from``/``to``/``radio_id``/``tz``; ApiError 50 saying what is wrong."""
    if not start or not end:
        raise ApiError(50, "`from` and `to` are required (YYYY-MM-DD; the range is [from, to)).")
    try:
        return ReportRange.parse(start, end, radio_id, tz)
    except ServiceError as exc:
        raise ApiError(exc.code, exc.message) from None


def report_service(state: AppState) -> ReportService:
    return ReportService(state.db, state.settings.callback_timezone)


async def _query(request: Request) -> ReportQuery:
    """The one preamble of every format: the parameters, the admin token, the range."""
    state = app_state(request)
    p = parse(ReportParams, dict(request.query_params))
    await authorize(state, request, p.api_token, scope=ADMIN_SCOPE, count=False)
    return ReportQuery(p, report_range(p.start, p.end, p.radio_id, p.tz), report_service(state))


def _error(request: Request, exc: ApiError) -> JSONResponse:
    state = app_state(request)
    echo = RequestEcho("reports", request.method, dict(request.query_params))
    body = error_body(exc.code, exc.message, echo, operator=operator(request, state.settings))
    return JSONResponse(body, status_code=_STATUS.get(exc.code, 400))


def _report_route(path: str, summary: str) -> Callable[[ReportHandler], ReportHandler]:
    """Register ``handler`` at ``path`` behind the preamble: a refused request (token, range,
    parameters) is answered AudD's error before the handler runs."""

    def register(handler: ReportHandler) -> ReportHandler:
        async def endpoint(request: Request) -> Response:
            try:
                query = await _query(request)
            except ApiError as exc:
                return _error(request, exc)
            return await handler(query)

        endpoint.__name__ = handler.__name__
        router.add_api_route(path, endpoint, methods=["GET"], summary=summary)
        return handler

    return register


def _filename(rng: ReportRange, ext: str) -> dict[str, str]:
    station = "" if rng.radio_id is None else f"-radio{rng.radio_id}"
    return {"Content-Disposition": f'attachment; filename="airplay-{rng.start}-{rng.end}{station}.{ext}"'}


@_report_route("/reports.json", "airplay report: totals, plays per day, stations, top tracks, play log page")
async def report_json(q: ReportQuery) -> Response:
    from soundmark.reports.json_export import report_json as render

    p = q.params
    report = await q.service.areport(q.range)
    page = await q.service.aplays(q.range, p.offset, p.limit)
    return JSONResponse({"status": "success", "result": render(report, top=p.top, log=page, log_offset=p.offset)})


@_report_route("/reports.csv", "airplay play log (or, with kind=tracks, the per-track summary) as CSV")
async def report_csv(q: ReportQuery) -> Response:
    return await csv_download(q.service, q.range, q.params.kind)


@_report_route("/reports.pdf", "airplay report as a PDF: totals, chart of plays per day, tables")
async def report_pdf(q: ReportQuery) -> Response:
    return await pdf_download(q.service, q.range, q.params.top)


async def csv_download(service: ReportService, rng: ReportRange, kind: str = "plays") -> Response:
    """The play log (or, ``kind="tracks"``, the per-track summary) of ``rng`` as a CSV download
    (the API's and the web app's)."""
    from soundmark.reports.csv_export import write_play_log, write_track_summary

    # A year of plays can be large: written to a spooled file (in memory up to SPOOL_BYTES, then
    # on disk), then sent from it in chunks.
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115 - closed by _chunks
    try:
        out = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        if kind == "tracks":
            write_track_summary(await service.areport(rng), out)
        else:
            await service.aeach_play(rng, lambda plays: write_play_log(plays, out))
        out.detach()
    except BaseException:
        spool.close()
        raise
    headers = _filename(rng, "tracks.csv" if kind == "tracks" else "csv")
    return StreamingResponse(_chunks(spool), media_type="text/csv; charset=utf-8", headers=headers)


async def _chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        spool.seek(0)
        while chunk := await asyncio.to_thread(spool.read, 1 << 16):
            yield chunk
    finally:
        spool.close()


async def pdf_download(service: ReportService, rng: ReportRange, top: int = 20) -> Response:
    """The report of ``rng`` (its ``top`` tracks) as a PDF download, drawn in a thread."""
    from soundmark.reports.pdf import write_pdf

    report = await service.areport(rng)
    out = io.BytesIO()
    await asyncio.to_thread(write_pdf, report, out, top=top, generated=datetime.now().astimezone())
    return Response(out.getvalue(), media_type="application/pdf", headers=_filename(rng, "pdf"))
