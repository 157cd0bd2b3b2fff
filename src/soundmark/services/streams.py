"""Stream use cases: the callback URL and the streams of an account, with ONE set of rules for
every transport (AudD's stream methods over HTTP, ``soundmark stream`` on the command line).

The rules: a URL is required; AudD's ``twitch:``/``youtube:`` shortcuts are refused; a stream or
callback URL passes the SSRF check of net/ under the settings' address policy
(``SOUNDMARK_ALLOW_PRIVATE_URLS``, ``SOUNDMARK_ALLOWED_NETWORKS``; the ``url_check`` seam,
``streams.source.check_stream_url`` by default); a token monitors at most ``streams_per_token``
streams (replacing one it has is always allowed).

Every use case is awaited: the store's reads and writes go through the server's read pool and
writer (a ``LocalDatabase``'s in a thread), the URL check (DNS) runs in a thread, so nothing
blocks the event loop. The CLI, which has no loop, runs them with ``asyncio.run``. A refused
request raises ``ServiceError`` with AudD's code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Literal

from soundmark.audd.models import Stream
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sql import Row
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import Database, read_async
from soundmark.net.addresses import AddressPolicy
from soundmark.services.accounts import AccountService
from soundmark.services.errors import ServiceError
from soundmark.services.reports import play_start
from soundmark.settings import Settings
from soundmark.streams.callbacks import NO_OP_RECEIVERS
from soundmark.streams.health import Health, read_health
from soundmark.streams.registry import StreamRow, StreamStore, token_md5
from soundmark.streams.source import StreamError, check_stream_url
from soundmark.streams.zone import parse_zone

STREAM_LIMIT_MESSAGE = (
    "authorization failed: the limit was reached. (This api_token may monitor {limit} streams; "
    "ask the server's operator for more.)"
)
UNSUPPORTED_SHORTCUTS = ("twitch:", "youtube:", "youtube-ch:")

UrlCheck = Callable[[str, AddressPolicy], None]  # (url, policy) -> None, or raises StreamError
Callbacks = Literal["before"] | None  # AudD's ``callbacks=before``: report songs as they start


@dataclass(frozen=True)
class StreamAccount:
    """The owner of streams: a token's id and the md5 of the token (its longpoll categories)."""

    token_id: int
    token_md5: str

    @classmethod
    def of(cls, token_id: int, token: str) -> StreamAccount:
        return cls(token_id, token_md5(token))


def stream_entry(row: StreamRow) -> Stream:
    """A stream as AudD's ``getStreams`` lists it (``soundmark stream list --json`` too)."""
    return Stream(radio_id=row.radio_id, url=row.url, stream_running=row.running, longpoll_category=row.category)


def _ssrf_check(url: str, policy: AddressPolicy) -> None:
    check_stream_url(url, policy=policy)


class StreamService:
    def __init__(self, store: StreamStore, settings: Settings, url_check: UrlCheck = _ssrf_check):
        self._store, self._settings, self._url_check = store, settings, url_check
        self._policy = AddressPolicy.from_settings(settings)

    # --- callback URL -------------------------------------------------------------------------
    async def set_callback_url(self, account: StreamAccount, url: str) -> None:
        checked = await self._checked(url, "callback")
        await self._store.aset_callback_url(account.token_id, account.token_md5, checked)

    async def callback_url(self, account: StreamAccount) -> str:
        url = await self._store.acallback_url(account.token_id)
        if not url:
            raise ServiceError(19)
        return url

    # --- streams ------------------------------------------------------------------------------
    async def add_stream(self, account: StreamAccount, radio_id: int, url: str, callbacks: Callbacks = None) -> None:
        """Add (or replace) the stream ``radio_id`` of the account."""
        url = await self._checked(url, "stream")
        limit, store, token_id = self._settings.streams_per_token, self._store, account.token_id
        if not await store.ahas_stream(token_id, radio_id) and await store.acount_streams(token_id) >= limit:
            raise ServiceError(902, STREAM_LIMIT_MESSAGE.format(limit=limit))
        await store.aadd_stream(token_id, account.token_md5, radio_id, url, callbacks)

    async def set_stream_url(self, account: StreamAccount, radio_id: int, url: str) -> None:
        url = await self._checked(url, "stream")
        if not await self._store.aset_stream_url(account.token_id, radio_id, url):
            raise ServiceError(50, f"there is no stream with radio_id {radio_id}.")

    async def delete_stream(self, account: StreamAccount, radio_id: int) -> None:
        if not await self._store.adelete_stream(account.token_id, radio_id):
            raise ServiceError(50, f"there is no stream with radio_id {radio_id}.")

    async def streams(self, account: StreamAccount | None) -> list[StreamRow]:
        """The account's streams (every account's with None: the operator's view)."""
        return await self._store.astreams(None if account is None else account.token_id)

    # --- the rules ----------------------------------------------------------------------------
    async def _checked(self, url: str, what: Literal["stream", "callback"]) -> str:
        return await asyncio.to_thread(self.checked_url, url, what)  # the SSRF check resolves the host

    def checked_url(self, url: str, what: Literal["stream", "callback"]) -> str:
        """``url`` when the rules let it be a stream / callback URL, else a ``ServiceError``:
        50 for a malformed or refused callback, 600 for a refused stream (as AudD answers).
        Blocks (DNS): the use cases run it in a thread."""
        url = url.strip()
        if not url:
            raise ServiceError(50, "the `url` parameter is required.")
        if url.lower().startswith(UNSUPPORTED_SHORTCUTS):
            raise ServiceError(50, "twitch:/youtube: stream shortcuts are not supported by this server.")
        if what == "callback" and any(x in url for x in NO_OP_RECEIVERS):
            return url
        try:
            self._url_check(url, self._policy)
        except StreamError as exc:
            raise ServiceError(600 if what == "stream" else 50, f"the {what} URL is refused: {exc}.") from exc
        return url


# --- the Stations view (the web app's /streams) ---------------------------------------------------
MAX_STATIONS = 500  # streams one view lists (a server monitors far fewer; the rest are counted)
RECENT_PLAYS = 50  # the last plays a view lists, every station together
STALE_SECONDS = 30.0  # a connected stream whose health row is older: the monitor is not reporting
MAX_RADIO_ID = 2**63 - 1

StationState = Literal["starting", "connected", "silence", "down", "stale"]


@dataclass(frozen=True)
class Station:
    """One monitored stream with its health and the song playing now (unix times in seconds)."""

    stream_id: int
    token_id: int
    owner: str  # the token's name
    radio_id: int
    url: str
    state: StationState
    health: Health | None  # None until the monitor first reported
    now_title: str | None
    now_artist: str | None
    now_since: float | None
    status_message: str | None  # the last notification (650 / 651 / resumed)


@dataclass(frozen=True)
class RecentPlay:
    """One play of the airplay log (``plays``): ``start`` when it began (unix time; None for a
    timestamp the monitor did not write), placed as the reports place it."""

    id: int
    token_id: int
    radio_id: int
    start: float | None
    play_length: int | None
    title: str
    artist: str
    score: int | None


@dataclass(frozen=True)
class StationsView:
    stations: list[Station]
    more_stations: int  # streams past MAX_STATIONS, not listed
    plays: list[RecentPlay]  # newest first, at most RECENT_PLAYS
    at: float  # when it was read


def station_state(health: Health | None, now: float, stale_after: float = STALE_SECONDS) -> StationState:
    """What a stream's health row says, in one word (one rule for every page and transport)."""
    if health is None:
        return "starting"
    if not health.connected:
        return "down" if health.error_at is not None else "starting"
    if now - health.updated_at > stale_after:
        return "stale"
    return "silence" if health.silence else "connected"


def _stations_read(limit: int, plays: int, now: float, zone: tzinfo) -> Callable[[Catalog], StationsView]:
    def read(c: Catalog) -> StationsView:
        health = read_health(c)
        rows = c.conn.execute(
            "SELECT s.id, s.token_id, COALESCE(t.name, ''), s.radio_id, s.url, s.status_message, h.now_track_id, "
            "tr.title, tr.artist FROM streams s LEFT JOIN tokens t ON t.id = s.token_id "
            "LEFT JOIN stream_health h ON h.stream_id = s.id LEFT JOIN tracks tr ON tr.id = h.now_track_id "
            "ORDER BY s.token_id, s.radio_id LIMIT ?",
            (limit + 1,),
        ).fetchall()
        stations = [_station(r, health.get(int(r[0])), now) for r in rows[:limit]]
        more = 0
        if len(rows) > limit:
            more = int(c.conn.execute("SELECT COUNT(*) FROM streams").fetchone()[0]) - limit
        recent = [
            _recent_play(r, zone)
            for r in c.conn.execute(
                "SELECT id, token_id, radio_id, heard_at, play_length, title, artist, score, created_ms FROM plays "
                "ORDER BY id DESC LIMIT ?",
                (plays,),
            )
        ]
        return StationsView(stations, more, recent, now)

    return read


def _recent_play(r: Row, zone: tzinfo) -> RecentPlay:
    length = _int(r[4])
    start = play_start(str(r[3]), int(r[8]), length, zone)
    return RecentPlay(
        int(r[0]), int(r[1]), int(r[2]), None if start is None else start.timestamp(), length, str(r[5] or ""),
        str(r[6] or ""), _int(r[7]),
    )  # fmt: skip


def _int(v: object) -> int | None:
    return None if v is None else int(v)  # type: ignore[call-overload]


def _station(r: Row, health: Health | None, now: float) -> Station:
    state = station_state(health, now)
    playing = health is not None and state in ("connected", "silence") and health.now_track_id is not None
    return Station(
        int(r[0]), int(r[1]), str(r[2]), int(r[3]), str(r[4]), state, health,
        str(r[7] or "") if playing else None, str(r[8] or "") if playing else None,
        health.now_since if playing and health is not None else None,
        None if r[5] is None else str(r[5]),
    )  # fmt: skip


def parse_radio_id(text: str) -> int:
    """A radio id typed into a form: a whole number from 0 (ServiceError 50 otherwise)."""
    text = text.strip()
    if not text.isdigit() or len(text) > 19 or int(text) > MAX_RADIO_ID:
        raise ServiceError(50, "the radio id must be a whole number (0 or more).")
    return int(text)


class StationsService:
    """The Stations page's use cases: every stream (all tokens') with its health, now playing and
    the last plays; adding and removing a stream for the admin session's token through
    ``StreamService`` (the SSRF check, the per-token limit: AudD's ``addStream`` rules).

    A stream belongs to a token and its longpoll category is ``md5(md5(token) + radio_id)``, but a
    web session knows only its token's id (the token itself is never stored, only its SHA-256).
    The md5 an account's streams use is kept in ``stream_accounts`` once the token has been used
    with a stream method; until then the page asks for the token once, checks that it is the
    session's token, and derives the md5 from it (``account``)."""

    def __init__(self, db: Database, streams: StreamService, settings: Settings):
        self._db, self._streams, self._settings = db, streams, settings

    async def view(self, *, now: float | None = None) -> StationsView:
        at = time.time() if now is None else now
        zone = parse_zone(self._settings.callback_timezone)
        found: StationsView = await read_async(self._db, _stations_read(MAX_STATIONS, RECENT_PLAYS, at, zone))
        return found

    async def knows_account(self, token_id: int) -> bool:
        """Whether the token's longpoll key is known (a stream can be added without the token)."""
        return await self._md5_of(token_id) is not None

    async def account(self, token_id: int, token: str = "") -> StreamAccount:
        """The stream account of the session's token ``token_id``; ``token`` (the token itself)
        is needed only while its longpoll key is unknown, and must be that token."""
        md5 = await self._md5_of(token_id)
        if md5 is not None:
            return StreamAccount(token_id, md5)
        token = token.strip()
        if not token:
            raise ServiceError(50, "enter your API token once: its streams' longpoll categories are derived from it.")
        info = await read_async(self._db, lambda c: AccountService(TokenStore(c.conn)).authenticate(token, "admin"))
        if info.id != token_id:
            raise ServiceError(900, "that is not the token this session was opened with.")
        return StreamAccount.of(token_id, token)

    async def add(self, token_id: int, radio_id: str, url: str, *, token: str = "", before: bool = False) -> None:
        """Add (or replace) the stream ``radio_id`` of the session's token."""
        rid = parse_radio_id(radio_id)
        account = await self.account(token_id, token)
        await self._streams.add_stream(account, rid, url, "before" if before else None)

    async def remove(self, token_id: int, radio_id: str) -> None:
        """Stop monitoring the stream ``radio_id`` of the token ``token_id`` (an admin may stop any)."""
        rid = parse_radio_id(radio_id)
        md5 = await self._md5_of(token_id) or ""
        await self._streams.delete_stream(StreamAccount(token_id, md5), rid)

    async def _md5_of(self, token_id: int) -> str | None:
        def read(c: Catalog) -> str | None:
            row = c.conn.execute("SELECT token_md5 FROM stream_accounts WHERE token_id=?", (token_id,)).fetchone()
            return None if row is None or not row[0] else str(row[0])

        found: str | None = await read_async(self._db, read)
        return found
