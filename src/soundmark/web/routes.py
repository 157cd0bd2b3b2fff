"""The web app's routes: the Listen page (``/`` for a browser), and ``install``, which mounts it with
the other pages (login, catalog, stations, reports, jobs, tokens) and the static assets."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import NoMatchFound

from soundmark.api.state import app_state
from soundmark.web import catalog, jobs, login, reports, stations, tokens
from soundmark.web.browser import BrowserPageRoute, VaryOnAccept
from soundmark.web.pages import Pages, pages_of
from soundmark.web.security import SecureStaticFiles
from soundmark.web.session import PageRefused, visitor

STATIC_PATH = "/static"
LISTEN_SECONDS = 8  # audio the microphone records before it is sent
# The providers the Listen page asks the API for: their links (and a cover) go on the card.
LISTEN_RETURN = "apple_music,spotify,deezer,napster,musicbrainz"
EXPLAIN_ROUTE = "explain"  # POST /explain: the "why it matched" picture, where the server has it

browser = APIRouter(route_class=BrowserPageRoute, include_in_schema=False)


def explain_path(request: Request) -> str:
    """Where this server draws "why it matched" (the route named ``explain``), else ""."""
    try:
        return str(request.app.url_path_for(EXPLAIN_ROUTE))
    except NoMatchFound:
        return ""


@browser.get("/")
async def listen_page(request: Request) -> Response:
    settings = app_state(request).settings
    return pages_of(request).render(
        request, "listen.html", await visitor(request), seconds=LISTEN_SECONDS, providers=LISTEN_RETURN,
        require_token=settings.require_token, max_upload_mb=settings.max_upload_bytes // (1024 * 1024),
        explain=explain_path(request),
    )  # fmt: skip


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    who = await visitor(request)
    return pages_of(request).render(request, "refused.html", who, status=exc.status, title=exc.title, reason=exc.reason)


def install(app: FastAPI) -> None:
    """Mount the web app on ``app`` (before the AudD methods, which catch every path)."""
    app.state.soundmark_web = Pages()
    app.add_exception_handler(PageRefused, refused)
    app.add_middleware(VaryOnAccept, paths=("/",), prefixes=(jobs.PATH + "/",))  # pages that are API URLs too
    app.mount(STATIC_PATH, SecureStaticFiles(directory=str(files("soundmark.web") / "static")), name="web-static")
    app.include_router(browser)
    app.include_router(login.router)
    app.include_router(tokens.router)
    app.include_router(catalog.router)  # /catalog: search, browse, a track, duplicates
    stations.install(app)  # /streams: the Stations page, its live events and forms
    app.include_router(reports.router)
    jobs.install(app)  # /jobs; the job page and its CSV ahead of the API's GET /jobs/{job_id}
