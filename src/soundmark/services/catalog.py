"""Catalog use cases shared by the transports: adding audio files (``soundmark add``), the custom
catalog's upload slots (AudD's ``upload``), editing a track's metadata (``soundmark meta``, the web
app's track page; AudD has no API method for it, so none is served), removing tracks, and the
web app's Catalog pages: browsing and searching (``catalog/browse.py``), a track's view with
where it was heard, and the duplicates report (an audit of the catalog against itself).

Every function blocks (decoding, SQLite, fsync): run it off the event loop. A refused request
raises ``ServiceError`` (AudD's code 50 for a track that is not there).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from soundmark.audd.metadata import provider_blocks
from soundmark.audit.groups import Group
from soundmark.audit.run import AuditedFile, AuditOptions, audit_store
from soundmark.catalog import browse
from soundmark.catalog.manifest import ManifestError, read_manifest
from soundmark.catalog.models import EXTERNAL_PROVIDERS, Track, TrackMeta
from soundmark.catalog.sqlite import Catalog
from soundmark.ingest import IngestItem, IngestReport, collect_items, ingest, items_from_manifest
from soundmark.services.errors import ServiceError
from soundmark.services.recognition_pool import Extracted
from soundmark.settings import Settings
from soundmark.store import NewTrack, Store


def replace_upload_slot(store: Store, audio_id: int, ex: Extracted, source: str) -> int:
    """Put the fingerprinted audio ``ex`` under AudD's ``audio_id`` in one atomic commit,
    replacing what the slot held and keeping metadata set earlier for that id; returns the new
    track id (never a reused one). Blocking: run it off the event loop, under the writer lock."""
    with store.writer() as writer:
        old_id = writer.catalog.find_by_audio_id(audio_id)
        meta = TrackMeta(audio_id=audio_id)
        if old_id is not None:
            old = writer.catalog.get_track(old_id)
            if old is not None:
                meta = old.meta
        # content_hash None: the same recording may sit under two audio ids, as AudD allows.
        new = NewTrack(meta, ex.duration, source, None, ex.hashes, ex.times, ex.peaks)
        added = writer.commit([new], replacing=[old_id] if old_id is not None else [])
    return added[0]


# --- adding audio files ---------------------------------------------------------------------------
def items_to_add(paths: Iterable[Path], manifest: Path | None = None) -> list[IngestItem]:
    """What ``add`` ingests: audio files under ``paths`` (folders searched recursively) and the
    rows of a CSV ``manifest``; a malformed manifest is ServiceError 50."""
    items = collect_items(paths)
    if manifest is not None:
        try:
            items += items_from_manifest(read_manifest(manifest))
        except ManifestError as exc:
            raise ServiceError(50, str(exc)) from exc
    return items


def add_files(
    store: Store, items: list[IngestItem], settings: Settings, progress: Callable[[IngestItem, str], None] | None = None
) -> IngestReport:
    """Fingerprint ``items`` in parallel and commit them in atomic batches (duplicates and files
    already stored are reported, not added); the settings give the workers, batch size and the
    longest track accepted."""
    return ingest(
        store, items, processes=settings.ingest_processes, batch_tracks=settings.batch_tracks,
        max_seconds=settings.max_track_hours * 3600, progress=progress,
    )  # fmt: skip


# --- metadata ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackRef:
    """A track named by soundmark's id or by its AudD custom-catalog ``audio_id`` (exactly one)."""

    track_id: int | None = None
    audio_id: int | None = None

    def __post_init__(self) -> None:
        if (self.track_id is None) == (self.audio_id is None):
            raise ValueError("name the track with exactly one of track_id or audio_id")


@dataclass(frozen=True)
class MetaEdit:
    """Fields to change (None: keep); in ``external`` an empty value removes the key."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    release_date: str | None = None
    label: str | None = None
    isrc: str | None = None
    upc: str | None = None
    lyrics: str | None = None
    external: Mapping[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.external and all(getattr(self, f) is None for f in _PLAIN_FIELDS)


_PLAIN_FIELDS = ("title", "artist", "album", "release_date", "label", "isrc", "upc", "lyrics")


def find_track(store: Store, ref: TrackRef) -> Track:
    tid = ref.track_id if ref.track_id is not None else store.catalog.find_by_audio_id(int(ref.audio_id or 0))
    track = store.catalog.get_track(tid) if tid is not None else None
    if track is None:
        raise ServiceError(50, "no such track")
    return track


def edit_metadata(store: Store, ref: TrackRef, edit: MetaEdit) -> Track:
    """The track with ``edit`` applied (committed when it changes anything); others keep theirs."""
    track = find_track(store, ref)
    if edit.empty:
        return track
    changes: dict[str, object] = {f: getattr(edit, f) for f in _PLAIN_FIELDS if getattr(edit, f) is not None}
    if edit.external:
        ext = dict(track.meta.external)
        for key, value in edit.external.items():
            if value:
                ext[key] = value
            else:
                ext.pop(key, None)
        changes["external"] = ext
    meta = dataclasses.replace(track.meta, **changes)  # type: ignore[arg-type]
    with store.writer() as writer:
        writer.update_meta(track.id, meta)
    return dataclasses.replace(track, meta=meta)


# --- removal ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Removal:
    removed: tuple[int, ...]
    missing: tuple[int, ...]  # ids that named no track


def remove_tracks(store: Store, track_ids: Iterable[int]) -> Removal:
    """Delete tracks and their fingerprints: hidden at once, their bytes reclaimed when the
    index's merge policy rewrites what the removals hollowed out (not the whole index: one
    removal in a big catalog must not rewrite every segment; ``Store.compact`` rewrites it all)."""
    removed: list[int] = []
    missing: list[int] = []
    with store.writer() as writer:
        for tid in track_ids:
            (removed if writer.remove(tid) else missing).append(tid)
        writer.merge_by_policy()
    return Removal(tuple(removed), tuple(missing))


# --- browsing, searching and a track's view (the web app's Catalog pages) ----------------------
PAGE_SIZE = 25  # tracks on a page unless asked otherwise (at most browse.MAX_PAGE)
MAX_QUERY = 200  # characters of a search kept


@dataclass(frozen=True)
class CatalogQuery:
    """A page of the catalog: every track in ``sort`` order (keyset: after or before a track id),
    or the matches of ``q`` in ``field`` (``offset`` into at most ``browse.MAX_RESULTS``)."""

    q: str = ""
    field: str = "all"
    sort: str = "title"
    after: int | None = None
    before: int | None = None
    offset: int = 0
    size: int = PAGE_SIZE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> CatalogQuery:
        """The query of a request's parameters; ServiceError 50 saying which one is wrong."""
        q = " ".join(str(params.get("q", "")).split())[:MAX_QUERY]
        field = params.get("field", "") or "all"
        sort = params.get("sort", "") or "title"
        if field not in browse.FIELDS:
            raise ServiceError(50, f"`field` must be one of {', '.join(browse.FIELDS)}.")
        if sort not in browse.SORTS:
            raise ServiceError(50, f"`sort` must be one of {', '.join(browse.SORTS)}.")
        return cls(
            q, field, sort, _whole(params, "after"), _whole(params, "before"),
            min(_whole(params, "offset") or 0, browse.MAX_RESULTS), _whole(params, "size") or PAGE_SIZE,
        )  # fmt: skip

    @property
    def searching(self) -> bool:
        return bool(self.q)


def _whole(params: Mapping[str, str], name: str) -> int | None:
    text = str(params.get(name, "")).strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ServiceError(50, f"`{name}` must be a whole number.")
    return int(text)


@dataclass(frozen=True)
class CatalogPage:
    query: CatalogQuery
    tracks: list[Track]
    after: int | None = None  # browsing: the next page starts after this id
    before: int | None = None  # browsing: the previous page ends before this id
    total: int = 0  # searching: matches (at most browse.MAX_RESULTS)
    capped: bool = False  # searching: more matched than are listed
    ranked: bool = True  # searching: False when too many matched to rank them
    tracks_in_catalog: int = 0


def find_tracks(catalog: Catalog, query: CatalogQuery) -> CatalogPage:
    """The page ``query`` names. Blocking (SQLite): run it on a read pool."""
    size = max(1, min(query.size, browse.MAX_PAGE))
    in_catalog = catalog.totals()[0]
    if query.searching:
        found = browse.search(catalog, query.q, query.field, offset=query.offset, limit=size)
        return CatalogPage(
            query, found.tracks, total=found.total, capped=found.capped, ranked=found.ranked,
            tracks_in_catalog=in_catalog,
        )  # fmt: skip
    page = browse.browse(catalog, query.sort, after=query.after, before=query.before, limit=size)
    return CatalogPage(query, page.tracks, page.after, page.before, tracks_in_catalog=in_catalog)


@dataclass(frozen=True)
class TrackView:
    track: Track
    external: list[tuple[str, str]]  # every external id or link, by key
    links: list[tuple[str, str]]  # (provider, https URL) of the provider pages the catalog knows
    cover: str | None  # an https image URL from a provider block, if the catalog has one
    stations: list[browse.StationPlays] | None  # where it was heard; None: not asked for


def track_view(catalog: Catalog, track_id: int, *, with_plays: bool) -> TrackView:
    """A track with its external ids, links, cover and (``with_plays``) its plays per station;
    ServiceError 50 when there is no such track. Blocking: run it on a read pool."""
    track = catalog.get_track(track_id)
    if track is None:
        raise ServiceError(50, "no such track")
    blocks = provider_blocks(track, EXTERNAL_PROVIDERS)
    stations = browse.station_plays(catalog, track_id) if with_plays else None
    return TrackView(track, sorted(track.meta.external.items()), _links(blocks), _cover(blocks), stations)


def _https(value: object) -> str | None:
    """``value`` when it is an https URL (what the pages' Content-Security-Policy lets load)."""
    if not isinstance(value, str) or len(value) > 2000:
        return None
    try:
        parsed = urlparse(value)
    except ValueError:
        return None
    return value if parsed.scheme == "https" and parsed.netloc else None


def _dig(block: object, *path: str | int) -> object:
    for step in path:
        if isinstance(step, int):
            block = block[step] if isinstance(block, list) and len(block) > step else None
        else:
            block = block.get(step) if isinstance(block, dict) else None
    return block


def _cover(blocks: Mapping[str, object]) -> str | None:
    """The first cover a provider block holds (the Listen page's card picks the same)."""
    artwork = _dig(blocks.get("apple_music"), "artwork", "url")
    candidates = (
        _dig(blocks.get("spotify"), "album", "images", 0, "url"),
        artwork.replace("{w}", "300").replace("{h}", "300") if isinstance(artwork, str) else None,
        _dig(blocks.get("deezer"), "album", "cover_medium") or _dig(blocks.get("deezer"), "album", "cover"),
    )
    return next((url for c in candidates if (url := _https(c))), None)


def _links(blocks: Mapping[str, object]) -> list[tuple[str, str]]:
    mbid = _dig(blocks.get("musicbrainz"), 0, "id")
    found = (
        ("Spotify", _dig(blocks.get("spotify"), "external_urls", "spotify")),
        ("Apple Music", _dig(blocks.get("apple_music"), "url")),
        ("Deezer", _dig(blocks.get("deezer"), "link")),
        (
            "Napster",
            f"https://web.napster.com/track/{_dig(blocks.get('napster'), 'id')}" if blocks.get("napster") else None,
        ),
        ("MusicBrainz", f"https://musicbrainz.org/recording/{mbid}" if isinstance(mbid, str) else None),
    )
    return [(name, url) for name, c in found if (url := _https(c))]


MAX_FIELD = 200  # characters of a metadata field from a form (lyrics: MAX_LYRICS)
MAX_LYRICS = 15_000  # a form is at most 64 KiB (web/session.py), 4 bytes a character at worst
MAX_EXTERNAL = 50  # external keys a track may hold after an edit from a form


def edit_from_form(track: Track, form: Mapping[str, str]) -> MetaEdit:
    """The changes a track page's edit form asks for: each plain field whose text differs from
    the track's (an emptied field is cleared), ``ext:<key>`` fields for its external ids (empty:
    removed) and one new ``new_key``/``new_value``; ServiceError 50 for an oversized field."""
    changes: dict[str, str] = {}
    for name in _PLAIN_FIELDS:
        if name not in form:
            continue
        value = form[name].strip() if name != "lyrics" else form[name].replace("\r\n", "\n").strip()
        cap = MAX_LYRICS if name == "lyrics" else MAX_FIELD
        if len(value) > cap:
            raise ServiceError(50, f"{name} is longer than {cap} characters.")
        if value != (getattr(track.meta, name) or ""):
            changes[name] = value
    external: dict[str, str] = {}
    for key, value in form.items():
        if key.startswith("ext:") and key[4:] in track.meta.external and value.strip() != track.meta.external[key[4:]]:
            external[key[4:]] = value.strip()
    new_key, new_value = form.get("new_key", "").strip(), form.get("new_value", "").strip()
    if new_key:
        if len(new_key) > 100 or not all(c.isalnum() or c in "_@.-" for c in new_key):
            raise ServiceError(50, "an external key is letters, digits and _ @ . - (at most 100).")
        external[new_key] = new_value
    if any(len(v) > MAX_LYRICS for v in external.values()):
        raise ServiceError(50, f"an external value is longer than {MAX_LYRICS} characters.")
    kept = {k for k in track.meta.external if external.get(k, "x")} | {k for k, v in external.items() if v}
    if len(kept) > MAX_EXTERNAL:
        raise ServiceError(50, f"a track holds at most {MAX_EXTERNAL} external ids.")
    return MetaEdit(**changes, external=external)


# --- the duplicates report: the catalog audited against itself ----------------------------------
MAX_AUDIT_HOURS = 100.0  # audio the web report audits at most (its table: about 4 MB an hour, in memory)


@dataclass(frozen=True)
class DuplicatesResult:
    """The outcome of one audit of the catalog: its groups of tracks sharing audio, or why none."""

    finished_at: float  # UNIX time
    tracks: int
    hours: float
    wall_seconds: float
    groups: list[Group] = field(default_factory=list)
    files: dict[int, AuditedFile] = field(default_factory=dict)  # by track id
    error: str = ""


@dataclass(frozen=True)
class AuditProgress:
    running: bool
    stage: str = ""  # "read" (the stored peaks) | "compare"
    done: int = 0
    total: int = 0
    last: DuplicatesResult | None = None


class _Stopped(Exception):
    pass


class DuplicateAudits:
    """One audit of the catalog against itself at a time (``soundmark audit --db``'s rules:
    rare-hash seeding, exact recount, the peak check), run in its own thread on a store of its
    own; the last result is kept (in memory: until the server restarts). A catalog of more than
    ``max_hours`` of audio is refused with a message (``soundmark audit --db`` audits any)."""

    def __init__(self, open_store: Callable[[], Store], options: AuditOptions | None = None,
                 max_hours: float = MAX_AUDIT_HOURS) -> None:  # fmt: skip
        self._open_store = open_store
        self._options = options or AuditOptions()
        self._max_hours = max_hours
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress = AuditProgress(False)

    def progress(self) -> AuditProgress:
        with self._lock:
            return self._progress

    def start(self) -> bool:
        """Start an audit; False when one is running already."""
        with self._lock:
            if self._progress.running:
                return False
            self._progress = AuditProgress(True, last=self._progress.last)
            self._thread = threading.Thread(target=self._run, name="soundmark-catalog-audit", daemon=True)
            self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> AuditProgress:
        """The progress once the running audit (if any) ends or ``timeout`` passes (blocking)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.progress()

    def close(self) -> None:
        """Stop a running audit at its next track (blocking until it has)."""
        self._stop.set()
        self.wait()

    def _advance(self, stage: str, done: int, total: int) -> None:
        if self._stop.is_set():
            raise _Stopped
        with self._lock:
            self._progress = dataclasses.replace(self._progress, stage=stage, done=done, total=total)

    def _run(self) -> None:
        start = time.time()
        try:
            result = self._audit(start)
        except _Stopped:
            result = DuplicatesResult(time.time(), 0, 0.0, time.time() - start, error="stopped (the server stopped)")
        except Exception as exc:  # the report says why; the server goes on
            result = DuplicatesResult(time.time(), 0, 0.0, time.time() - start, error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self._progress = AuditProgress(False, last=result)

    def _audit(self, start: float) -> DuplicatesResult:
        with self._open_store() as store:
            tracks, hours = store.catalog.totals()
            if hours > self._max_hours:
                return DuplicatesResult(
                    time.time(), tracks, hours, time.time() - start,
                    error=f"the catalog holds {hours:.0f} h of audio; this report audits at most "
                    f"{self._max_hours:.0f} h: run `soundmark audit --db` on the store instead.",
                )  # fmt: skip
            if tracks == 0:
                return DuplicatesResult(time.time(), 0, 0.0, time.time() - start, error="the catalog holds no tracks.")
            report = audit_store(store, self._options, self._advance)
        files = {f.key: f for f in report.files}
        return DuplicatesResult(
            time.time(), len(report.files), report.audio_seconds / 3600, report.wall_seconds, report.groups, files
        )
