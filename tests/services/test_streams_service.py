"""The stream use cases on a real store: one set of rules for the API and the CLI."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from soundmark.catalog.sqlite import CATALOG_FILE, Catalog
from soundmark.catalog.writer import DbWriter, ReadPool, ServerDatabase
from soundmark.fingerprint.params import FingerprintParams
from soundmark.net.addresses import AddressPolicy
from soundmark.services.errors import ServiceError
from soundmark.services.streams import StreamAccount, StreamService
from soundmark.settings import Settings
from soundmark.store import Store
from soundmark.streams.registry import StreamStore, longpoll_category
from soundmark.streams.source import StreamError

ACCOUNT = StreamAccount.of(1, "a-token-of-the-radio")


def _allow_all(url: str, policy: AddressPolicy) -> None:
    """A URL check that accepts every http(s) URL without DNS (the rules around it are tested)."""
    if not url.startswith(("http://", "https://")):
        raise StreamError("invalid url: not http(s)")


@pytest.fixture()
def streams(tmp_path: Path) -> StreamStore:
    Store(tmp_path / "db", FingerprintParams(), create=True).close()
    store = StreamStore(tmp_path / "db")
    yield store  # type: ignore[misc]
    store.close()


def _code(call: object, *args: object) -> tuple[int, str]:
    with pytest.raises(ServiceError) as err:
        asyncio.run(call(*args))  # type: ignore[operator]
    return err.value.code, str(err.value)


def test_the_per_token_limit_counts_new_streams_but_lets_one_be_replaced(streams: StreamStore, tmp_path: Path) -> None:
    service = StreamService(streams, Settings(db=tmp_path / "db", streams_per_token=2), _allow_all)
    asyncio.run(service.add_stream(ACCOUNT, 1, "http://radio.example/1"))
    asyncio.run(service.add_stream(ACCOUNT, 2, "http://radio.example/2", "before"))
    code, message = _code(service.add_stream, ACCOUNT, 3, "http://radio.example/3")
    assert code == 902 and "may monitor 2 streams" in message
    asyncio.run(service.add_stream(ACCOUNT, 2, "http://radio.example/2b"))  # replacing is not a new stream
    other = StreamAccount.of(2, "another-token")
    asyncio.run(service.add_stream(other, 3, "http://radio.example/3"))  # the limit is per token
    rows = asyncio.run(service.streams(ACCOUNT))
    assert [(r.radio_id, r.url, r.callbacks) for r in rows] == [
        (1, "http://radio.example/1", None), (2, "http://radio.example/2b", None)
    ]  # fmt: skip
    assert rows[0].category == longpoll_category(ACCOUNT.token_md5, 1)
    assert len(asyncio.run(service.streams(None))) == 3  # the operator's view: every account


def test_urls_pass_the_ssrf_check_of_the_settings(streams: StreamStore, tmp_path: Path) -> None:
    strict = StreamService(streams, Settings(db=tmp_path / "db"))  # the real check: no private addresses
    code, message = _code(strict.add_stream, ACCOUNT, 1, "http://127.0.0.1:9/live")
    assert code == 600 and "non-public address" in message
    code, _ = _code(strict.set_callback_url, ACCOUNT, "http://10.0.0.1/cb")
    assert code == 50  # a refused callback URL is AudD's 50, a refused stream 600
    assert _code(strict.add_stream, ACCOUNT, 1, "twitch:somechannel")[0] == 50
    assert _code(strict.add_stream, ACCOUNT, 1, "  ")[0] == 50
    assert asyncio.run(strict.streams(ACCOUNT)) == []
    listed = StreamService(streams, Settings(db=tmp_path / "db", allowed_networks=("127.0.0.0/8",)))
    asyncio.run(listed.add_stream(ACCOUNT, 1, "http://127.0.0.1:9/live"))  # the allow-list admits exactly its networks
    assert _code(listed.add_stream, ACCOUNT, 2, "http://10.0.0.1/live")[0] == 600
    permissive = StreamService(streams, Settings(db=tmp_path / "db", allow_private_urls=True))
    asyncio.run(permissive.add_stream(ACCOUNT, 2, "http://10.0.0.1/live"))
    assert [r.url for r in asyncio.run(permissive.streams(ACCOUNT))] == [
        "http://127.0.0.1:9/live",
        "http://10.0.0.1/live",
    ]


def test_callback_url_and_missing_streams(streams: StreamStore, tmp_path: Path) -> None:
    service = StreamService(streams, Settings(db=tmp_path / "db"), _allow_all)
    assert _code(service.callback_url, ACCOUNT)[0] == 19  # none set yet
    asyncio.run(service.set_callback_url(ACCOUNT, "https://hooks.example/cb"))
    assert asyncio.run(service.callback_url(ACCOUNT)) == "https://hooks.example/cb"
    assert _code(service.delete_stream, ACCOUNT, 7) == (50, "there is no stream with radio_id 7.")
    assert _code(service.set_stream_url, ACCOUNT, 7, "http://radio.example/7")[0] == 50
    asyncio.run(service.add_stream(ACCOUNT, 7, "http://radio.example/7"))
    asyncio.run(service.set_stream_url(ACCOUNT, 7, "http://radio.example/7b"))
    assert [r.url for r in asyncio.run(service.streams(ACCOUNT))] == ["http://radio.example/7b"]
    asyncio.run(service.delete_stream(ACCOUNT, 7))
    assert asyncio.run(service.streams(ACCOUNT)) == []


def test_the_use_cases_are_awaited_through_the_writer_and_the_read_pool(tmp_path: Path) -> None:
    """Over the server's writer: while another process holds the write lock, ``add_stream``
    waits in the writer thread, not in the loop's one default-pool thread, and the account's
    streams are read meanwhile on the read pool; the stream is there once the lock goes."""
    root = tmp_path / "db"
    Store(root, FingerprintParams(), create=True).close()
    database = ServerDatabase(DbWriter(lambda: Catalog(root), lambda c: c.conn, Catalog.close), ReadPool(root))
    streams = StreamStore(root, database)
    service = StreamService(streams, Settings(db=root), _allow_all)
    other = sqlite3.connect(root / CATALOG_FILE, isolation_level=None, check_same_thread=False)

    async def run() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        await service.add_stream(ACCOUNT, 1, "http://radio.example/1")
        other.execute("BEGIN IMMEDIATE")  # `soundmark add`, say
        adding = asyncio.ensure_future(service.add_stream(ACCOUNT, 2, "http://radio.example/2"))
        probe = asyncio.ensure_future(asyncio.to_thread(lambda: "free"))  # after the URL check's turn
        done, _ = await asyncio.wait([probe, adding], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert done == {probe} and probe.result() == "free"  # (the timeout only guards against a hang)
        listed = await service.streams(ACCOUNT)  # WAL: the read pool does not wait for the lock
        assert [r.radio_id for r in listed] == [1] and not adding.done()
        other.execute("COMMIT")
        await adding
        assert [r.radio_id for r in await service.streams(ACCOUNT)] == [1, 2]

    try:
        asyncio.run(run())
    finally:
        other.close()
        streams.close()
        database.close()
