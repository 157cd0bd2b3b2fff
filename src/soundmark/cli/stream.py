"""soundmark stream: live stream monitoring from the command line.

``add`` / ``list`` / ``remove`` call the stream use cases (services/streams.py, awaited: run here
with ``asyncio.run``) on the store, with the rules AudD's ``addStream`` has over HTTP (the URL
check, the per-token limit); a running
``serve`` picks the change up within ``SOUNDMARK_STREAM_SYNC_SECONDS``. Streams belong to an API
token, as with AudD's ``addStream``. ``watch`` prints songs as they play: from a server's longpoll (``--server``), or by
monitoring a stream URL itself against the store (``--db``), without any server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.services.errors import ServiceError

if TYPE_CHECKING:  # imported lazily at run time, as in the functions below
    from soundmark.services.recognition_pool import WorkerMatch
    from soundmark.services.streams import StreamAccount, StreamService
    from soundmark.settings import Settings
    from soundmark.store import Store
    from soundmark.streams.monitor import StreamJob
    from soundmark.streams.tracker import Play


@contextmanager
def _service(db: Path | None) -> Iterator[tuple[Store, StreamService]]:
    """The store and the stream use cases over it, closed afterwards."""
    from soundmark.services.streams import StreamService
    from soundmark.streams.registry import StreamStore

    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        streams = StreamStore(settings.db)
        try:
            yield store, StreamService(streams, settings)
        finally:
            streams.close()


def _account(store: Store, token: str) -> StreamAccount:
    from soundmark.auth.tokens import TokenStore
    from soundmark.services.accounts import AccountService
    from soundmark.services.streams import StreamAccount

    try:
        info = AccountService(TokenStore(store.catalog)).authenticate(token, "streams")
    except ServiceError as exc:
        raise click.ClickException(f"{exc}: the token must be active and have the `streams` scope") from exc
    return StreamAccount.of(info.id, token)


_token_option = click.option(
    "--token", required=True, envvar="SOUNDMARK_TOKEN", help="API token owning the streams [env SOUNDMARK_TOKEN]."
)


@click.group("stream")
def stream_group() -> None:
    """Monitor live streams (Icecast/Shoutcast, HTTP audio, HLS) and report every song played.

    `add`, `list` and `remove` change the store with the rules of AudD's stream methods (URL
    check, per-token limit): a running `soundmark serve` (role `monitor` or `all`) on the same
    store picks changes up within SOUNDMARK_STREAM_SYNC_SECONDS and reports songs to the token's
    callback URL and longpoll (AudD's streams API). `watch` prints songs as they play.
    """


@stream_group.command("add")
@db_option
@_token_option
@click.option("--radio-id", type=int, required=True, help="Your number for this stream (unique per token).")
@click.option("--before", is_flag=True, help="Report songs as they start (AudD's callbacks=before), not when they end.")
@click.argument("url")
def add_command(db: Path | None, token: str, radio_id: int, before: bool, url: str) -> None:
    """Add (or replace) the stream URL under RADIO_ID; a running server starts monitoring it.

    The rules of AudD's addStream apply: the URL must be http(s) and reach a public address
    (SOUNDMARK_ALLOWED_NETWORKS lists private networks allowed, SOUNDMARK_ALLOW_PRIVATE_URLS=1
    allows every one), and a token monitors at most SOUNDMARK_STREAMS_PER_TOKEN streams."""
    with _service(db) as (store, service):
        try:
            asyncio.run(service.add_stream(_account(store, token), radio_id, url, "before" if before else None))
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"added stream {radio_id}: {url}")


@stream_group.command("list")
@db_option
@click.option("--token", envvar="SOUNDMARK_TOKEN", default=None, help="Only this token's streams [default: all].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (AudD's getStreams result) instead of a table.")
def list_command(db: Path | None, token: str | None, as_json: bool) -> None:
    """List monitored streams with their state and longpoll category."""
    from soundmark.audd.models import wire
    from soundmark.services.streams import stream_entry

    with _service(db) as (store, service):
        rows = asyncio.run(service.streams(_account(store, token) if token else None))
    if as_json:
        click.echo(json.dumps([wire(stream_entry(r)) for r in rows], indent=2))
        return
    for r in rows:
        state = "running" if r.running else f"down ({r.status_code})" if r.status_code else "not running"
        click.echo(f"{r.radio_id:>8}  {state:<14} {r.category}  {r.url}")


@stream_group.command("remove")
@db_option
@_token_option
@click.option("--radio-id", type=int, required=True, help="The stream to stop monitoring.")
def remove_command(db: Path | None, token: str, radio_id: int) -> None:
    """Stop monitoring a stream and forget it."""
    with _service(db) as (store, service):
        try:
            asyncio.run(service.delete_stream(_account(store, token), radio_id))
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"removed stream {radio_id}")


@stream_group.command("watch")
@db_option
@click.option("--server", default=None, help="Follow a running server's longpoll, e.g. http://127.0.0.1:8080.")
@click.option("--category", default=None, help="Longpoll category to follow (see `stream list`).")
@click.option("--token", envvar="SOUNDMARK_TOKEN", default=None, help="With --radio-id: derive the category.")
@click.option("--radio-id", type=int, default=None, help="With --token: the stream whose category to follow.")
@click.option("--url", "stream_url", default=None, help="Monitor this stream URL directly against --db (no server).")
@click.option("--allow-private-urls", is_flag=True, help="With --url: allow loopback/private stream addresses.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON line.")
def watch_command(
    db: Path | None, server: str | None, category: str | None, token: str | None, radio_id: int | None,
    stream_url: str | None, allow_private_urls: bool, as_json: bool,
) -> None:  # fmt: skip
    """Print songs as they play (Ctrl-C stops)."""
    if stream_url:
        asyncio.run(
            _watch_direct(load_settings(db=db, allow_private_urls=allow_private_urls or None), stream_url, as_json)
        )
        return
    if not server:
        raise click.UsageError("give --server (follow a server) or --url (monitor a stream directly)")
    if not category:
        if not (token and radio_id is not None):
            raise click.UsageError("give --category, or --token and --radio-id")
        from soundmark.streams.registry import longpoll_category, token_md5

        category = longpoll_category(token_md5(token), radio_id)
    _watch_longpoll(server.rstrip("/"), category, as_json)


def _print(payload: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, ensure_ascii=False))
        return
    if isinstance(payload.get("result"), dict):
        r = payload["result"]
        song = r["results"][0]
        length = f" ({r['play_length']} s)" if "play_length" in r else ""
        click.echo(f"{r['timestamp']}  [{r['radio_id']}]  {song.get('artist', '')} – {song.get('title', '')}{length}")
    elif isinstance(payload.get("notification"), dict):
        n = payload["notification"]
        click.echo(f"[{n['radio_id']}] {n['notification_code']}: {n['notification_message']}")


def _watch_longpoll(server: str, category: str, as_json: bool) -> None:
    import httpx

    since: int | None = None
    with httpx.Client(timeout=70) as client:
        while True:
            params: dict[str, str | int] = {"category": category, "timeout": 50}
            if since is not None:
                params["since_time"] = since
            try:
                body = client.get(f"{server}/longpoll/", params=params).json()
            except httpx.HTTPError as exc:
                click.echo(f"longpoll failed ({exc}); retrying", err=True)
                time.sleep(5)
                continue
            if "error" in body:
                raise click.ClickException(str(body["error"]))
            since = body.get("timestamp", since)
            if "events" in body:
                _print(body["events"][0]["data"], as_json)


async def _watch_direct(settings: Settings, url: str, as_json: bool) -> None:
    from soundmark.fingerprint.windows import WindowPeaks
    from soundmark.match.recognizer import MatchSettings, Recognizer
    from soundmark.services.recognition_pool import WorkerMatch
    from soundmark.streams.callbacks import notification_payload, result_payload, song_dict
    from soundmark.streams.monitor import MonitorConfig, StreamJob, StreamWorker

    store = open_store(settings.db, catalog_url=settings.catalog_url)
    recognizer = Recognizer(store, MatchSettings(min_score=settings.min_score, min_votes=settings.min_votes))

    async def recognize(window: WindowPeaks) -> list[WorkerMatch]:
        found = await asyncio.to_thread(recognizer.recognize_print, window.query_print(store.params))
        return [WorkerMatch.of(m) for m in found]

    async def duration(track_id: int) -> float | None:
        track = await asyncio.to_thread(store.catalog.get_track, track_id)  # SQL off the event loop
        return None if track is None else track.duration

    class Printer:
        async def song(self, job: StreamJob, play: Play, final: bool) -> None:
            songs: list[dict[str, object]] = []
            for m in [play.best, *play.alternatives]:
                track = await asyncio.to_thread(store.catalog.get_track, m.track_id)
                if track is not None:
                    songs.append(song_dict(m, track, settings.public_url or "", [], "us", settings.min_score))
            if songs:
                _print(result_payload(0, play, songs, settings.callback_timezone, with_length=final), as_json)

        async def notify(self, job: StreamJob, code: int, message: str, running: bool) -> None:
            _print(notification_payload(0, code, message, running), as_json)

        async def status(self, job: StreamJob, running: bool) -> None:
            pass

    config = MonitorConfig.from_settings(settings, store.params)
    worker = StreamWorker(StreamJob(0, 0, url), config, recognize, duration, Printer())
    try:
        await worker.run()
    finally:
        worker.stop()
        store.close()
