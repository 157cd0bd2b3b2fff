"""``/reports`` (admin): the airplay of the monitored streams over a range of days — totals, the
chart of plays per day, plays per station and per track, the top tracks — with the range's
exports: the play log and the per-track summary as CSV, the report as a PDF.

Every number is ``services/reports.py``'s (``ReportService`` on the read pool); the chart is the
PDF's (``reports/chart.py``), drawn in a thread; the downloads are the API's
(``api/routes/reports.py``), here behind the admin session instead of an API token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from soundmark.api.routes.reports import csv_download, pdf_download, report_service
from soundmark.api.state import app_state
from soundmark.reports.chart import chart_png
from soundmark.reports.fields import duration, external_ids
from soundmark.services.errors import ServiceError
from soundmark.services.reports import ReportRange, ReportService
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import PageRefused, visitor
from soundmark.web.tokens import to_login

router = APIRouter(include_in_schema=False)
PATH = "/reports"
DEFAULT_DAYS = 30  # the range shown without one asked: the last 30 days, today included
TOP_TRACKS = 10
TRACK_ROWS = 200  # rows of the per-track table; the rest are in the tracks CSV
PDF_TOP = 100  # tracks listed in the PDF
FIELD_CHARS = 32  # a form value longer than this is no date or station id


def default_range(today: datetime | None = None) -> tuple[str, str]:
    """``from`` and ``to`` of the last ``DEFAULT_DAYS`` days, today (UTC) included."""
    end = (today or datetime.now(UTC)).date() + timedelta(days=1)
    return (end - timedelta(days=DEFAULT_DAYS)).isoformat(), end.isoformat()


def asked(request: Request) -> dict[str, str]:
    """The range the query asks for (``from``, ``to``, ``radio_id``); the default range when it
    names neither date."""
    q = request.query_params
    values = {k: q.get(k, "").strip()[:FIELD_CHARS] for k in ("from", "to", "radio_id")}
    if not values["from"] and not values["to"]:
        values["from"], values["to"] = default_range()
    return values


def parse_range(values: dict[str, str]) -> ReportRange:
    """The range of ``values``; ServiceError with the sentence to show when it is not one."""
    if not values["from"] or not values["to"]:
        raise ServiceError(50, "Give both dates: from and to (YYYY-MM-DD; the range is [from, to)).")
    return ReportRange.parse(values["from"], values["to"], values["radio_id"] or None)


async def _admin_range(request: Request) -> ReportRange | Response:
    """The range of an export or chart request by an admin; the login page for anyone else."""
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    try:
        return parse_range(asked(request))
    except ServiceError as exc:
        raise PageRefused(str(exc)) from None


@router.get(PATH)
async def reports_page(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(PATH)
    values = asked(request)
    try:
        rng = parse_range(values)
    except ServiceError as exc:
        return pages_of(request).render(request, "reports.html", who, status=400, values=values, message=str(exc))
    report = await report_service(app_state(request)).areport(rng)
    query = urlencode({k: v for k, v in values.items() if v})
    return pages_of(request).render(
        request, "reports.html", who, values=values, report=report, query=query, top=report.top_tracks(TOP_TRACKS),
        tracks=report.tracks[:TRACK_ROWS], more_tracks=max(0, len(report.tracks) - TRACK_ROWS),
        busiest=max((d.plays for d in report.days), default=0), duration=duration, external_ids=external_ids,
    )  # fmt: skip


@router.get(f"{PATH}/chart.png")
async def reports_chart(request: Request) -> Response:
    """The chart of plays per day of the range, as a PNG."""
    rng = await _admin_range(request)
    if isinstance(rng, Response):
        return rng
    report = await report_service(app_state(request)).areport(rng)
    png = await asyncio.to_thread(chart_png, report)
    return secure(Response(png, media_type="image/png"), private=True)


async def _export(request: Request, make: Callable[[ReportService, ReportRange], Awaitable[Response]]) -> Response:
    """One export of the requested range, behind the admin session."""
    rng = await _admin_range(request)
    if isinstance(rng, Response):
        return rng
    return secure(await make(report_service(app_state(request)), rng), private=True)


@router.get(f"{PATH}/plays.csv")
async def reports_plays_csv(request: Request) -> Response:
    return await _export(request, lambda service, rng: csv_download(service, rng, "plays"))


@router.get(f"{PATH}/tracks.csv")
async def reports_tracks_csv(request: Request) -> Response:
    return await _export(request, lambda service, rng: csv_download(service, rng, "tracks"))


@router.get(f"{PATH}/report.pdf")
async def reports_pdf(request: Request) -> Response:
    return await _export(request, lambda service, rng: pdf_download(service, rng, PDF_TOP))
