"""``/catalog``: search and browse the catalog, a track's page (metadata, external ids, where it
was heard), editing and removing a track, and the duplicates report.

Who sees what: the catalog's metadata is what the API returns to any recogniser, so browsing,
searching and a track's metadata are public, unless the server requires a token for the API
(``--require-token``): then they need the admin login too. Where a track was heard (stations,
stream URLs, their owners), its source file, editing, removing and the duplicates report are
admin only; every form carries the session's CSRF token. Reads go through the read pool, writes
through the server's one writer (``AppState.write_store``), the audit runs in its own thread
(``services/catalog.py``).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from soundmark.api.state import AppState, app_state
from soundmark.catalog import browse
from soundmark.services.catalog import (
    CatalogPage,
    CatalogQuery,
    DuplicateAudits,
    TrackRef,
    TrackView,
    edit_from_form,
    edit_metadata,
    find_tracks,
    remove_tracks,
    track_view,
)
from soundmark.services.errors import ServiceError
from soundmark.store import Store
from soundmark.web.pages import pages_of
from soundmark.web.security import secure
from soundmark.web.session import PageRefused, Visitor, admin_form, visitor

router = APIRouter(include_in_schema=False)
PATH = "/catalog"
DUPLICATES_PATH = "/catalog/duplicates"
AUDITS = "catalog_duplicates"  # AppState.extras key of the DuplicateAudits
REFRESH_SECONDS = 2  # the duplicates page reloads itself this often while an audit runs
FIELD_LABELS = {"all": "Everything", "title": "Title", "artist": "Artist", "album": "Album", "lyrics": "Lyrics",
                "isrc": "ISRC (exact)"}  # fmt: skip
SORT_LABELS = {"title": "Title", "artist": "Artist", "added": "Newest first"}


class NotFound(PageRefused):
    status = 404
    title = "No such track"


def to_login(path: str) -> Response:
    return secure(RedirectResponse(f"/login?next={path}", status_code=303))


def _public(state: AppState, who: Visitor) -> bool:
    """Whether ``who`` may read the catalog's metadata."""
    return who.admin or not state.settings.require_token


def _track_id(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise NotFound(f"{text[:40]!r} is not a track id.")
    return int(text)


def track_path(track_id: int) -> str:
    return f"{PATH}/tracks/{track_id}"


def _page_links(page: CatalogPage) -> dict[str, str]:
    """The query strings of the previous and next pages ("" where there is none)."""
    q = page.query
    base: dict[str, str | int] = {"q": q.q, "field": q.field} if q.searching else {"sort": q.sort}
    if q.size != CatalogQuery.size:
        base["size"] = q.size
    links = {"prev": "", "next": ""}
    if q.searching:
        size = max(1, min(q.size, browse.MAX_PAGE))
        if q.offset > 0:
            links["prev"] = urlencode({**base, "offset": max(0, q.offset - size)})
        if q.offset + size < page.total:
            links["next"] = urlencode({**base, "offset": q.offset + size})
    else:
        if page.before is not None:
            links["prev"] = urlencode({**base, "before": page.before})
        if page.after is not None:
            links["next"] = urlencode({**base, "after": page.after})
    return links


@router.get(PATH)
async def catalog_page(request: Request) -> Response:
    state, who = app_state(request), await visitor(request)
    if not _public(state, who):
        return to_login(PATH)
    message = request.query_params.get("removed", "")
    try:
        query = CatalogQuery.parse(request.query_params)
    except ServiceError as exc:
        raise PageRefused(str(exc)) from None
    page = await state.db.aread(lambda catalog: find_tracks(catalog, query))
    return pages_of(request).render(
        request, "catalog.html", who, page=page, links=_page_links(page), fields=FIELD_LABELS, sorts=SORT_LABELS,
        removed=message[:200], require_token=state.settings.require_token, track_path=track_path,
    )  # fmt: skip


async def _track_page(request: Request, who: Visitor, track_id: int, *, message: str = "", error: str = "",
                      status: int = 200) -> Response:  # fmt: skip
    state = app_state(request)
    try:
        view: TrackView = await state.db.aread(lambda c: track_view(c, track_id, with_plays=who.admin))
    except ServiceError:
        raise NotFound(f"track {track_id} is not in the catalog (removed, or never added).") from None
    return pages_of(request).render(
        request, "track.html", who, status=status, view=view, track=view.track, message=message, error=error,
        zone=state.settings.callback_timezone, path=track_path(track_id),
    )  # fmt: skip


@router.get(PATH + "/tracks/{track_id}")
async def track_page(request: Request, track_id: str) -> Response:
    state, who = app_state(request), await visitor(request)
    tid = _track_id(track_id)
    if not _public(state, who):
        return to_login(track_path(tid))
    saved = request.query_params.get("saved") == "1"
    return await _track_page(request, who, tid, message="Saved." if saved else "")


async def _admin_form(request: Request, path: str) -> tuple[Visitor, dict[str, str]] | Response:
    """The admin's form (CSRF checked), or the redirect to the login page."""
    sent = await admin_form(request)
    if sent is None:
        return to_login(path)
    return sent[0], sent[2]


@router.post(PATH + "/tracks/{track_id}")
async def edit_track(request: Request, track_id: str) -> Response:
    tid = _track_id(track_id)
    checked = await _admin_form(request, track_path(tid))
    if isinstance(checked, Response):
        return checked
    who, form = checked
    state = app_state(request)
    try:
        view = await state.db.aread(lambda c: track_view(c, tid, with_plays=False))
        edit = edit_from_form(view.track, form)
        await state.write_store(lambda store: edit_metadata(store, TrackRef(track_id=tid), edit))
    except ServiceError as exc:
        if str(exc) == "no such track":
            raise NotFound(f"track {tid} is not in the catalog (removed, or never added).") from None
        return await _track_page(request, who, tid, error=f"Not saved: {exc}", status=400)
    return secure(RedirectResponse(f"{track_path(tid)}?saved=1", status_code=303))


@router.post(PATH + "/tracks/{track_id}/remove")
async def remove_track(request: Request, track_id: str) -> Response:
    tid = _track_id(track_id)
    checked = await _admin_form(request, track_path(tid))
    if isinstance(checked, Response):
        return checked
    who, form = checked
    if form.get("confirm") != "yes":
        return await _track_page(request, who, tid, error="Not removed: tick the box to confirm.", status=400)
    state = app_state(request)
    try:
        view = await state.db.aread(lambda c: track_view(c, tid, with_plays=False))
    except ServiceError:
        raise NotFound(f"track {tid} is not in the catalog (removed already?).") from None
    removal = await state.write_store(lambda store: remove_tracks(store, [tid]))
    title = view.track.meta.title or f"track {tid}"
    said = f"Removed {title}." if removal.removed else f"{title} was removed already."
    return secure(RedirectResponse(f"{PATH}?{urlencode({'removed': said})}", status_code=303))


def audits(state: AppState) -> DuplicateAudits:
    """The server's one DuplicateAudits (made on first use; its audits open their own Store)."""
    found = state.extras.get(AUDITS)
    if found is None:
        root, params = state.store.root, state.store.params
        found = state.extras.setdefault(AUDITS, DuplicateAudits(lambda: Store(root, params)))
    assert isinstance(found, DuplicateAudits)
    return found


@router.get(DUPLICATES_PATH)
async def duplicates_page(request: Request) -> Response:
    who = await visitor(request)
    if who.session is None:
        return to_login(DUPLICATES_PATH)
    return _duplicates(request, who)


def _duplicates(request: Request, who: Visitor) -> Response:
    progress = audits(app_state(request)).progress()
    return pages_of(request).render(
        request, "duplicates.html", who, progress=progress, last=progress.last,
        refresh=REFRESH_SECONDS if progress.running else 0, track_path=track_path,
    )  # fmt: skip


@router.post(DUPLICATES_PATH)
async def start_audit(request: Request) -> Response:
    checked = await _admin_form(request, DUPLICATES_PATH)
    if isinstance(checked, Response):
        return checked
    audits(app_state(request)).start()  # a second press while one runs just shows that one
    return secure(RedirectResponse(DUPLICATES_PATH, status_code=303))
