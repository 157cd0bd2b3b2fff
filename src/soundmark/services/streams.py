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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from soundmark.audd.models import Stream
from soundmark.net.addresses import AddressPolicy
from soundmark.services.errors import ServiceError
from soundmark.settings import Settings
from soundmark.streams.callbacks import NO_OP_RECEIVERS
from soundmark.streams.registry import StreamRow, StreamStore, token_md5
from soundmark.streams.source import StreamError, check_stream_url

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
