"""The stream use cases on a real store: one set of rules for the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        call(*args)  # type: ignore[operator]
    return err.value.code, str(err.value)


def test_the_per_token_limit_counts_new_streams_but_lets_one_be_replaced(streams: StreamStore, tmp_path: Path) -> None:
    service = StreamService(streams, Settings(db=tmp_path / "db", streams_per_token=2), _allow_all)
    service.add_stream(ACCOUNT, 1, "http://radio.example/1")
    service.add_stream(ACCOUNT, 2, "http://radio.example/2", "before")
    code, message = _code(service.add_stream, ACCOUNT, 3, "http://radio.example/3")
    assert code == 902 and "may monitor 2 streams" in message
    service.add_stream(ACCOUNT, 2, "http://radio.example/2b")  # replacing is not a new stream
    other = StreamAccount.of(2, "another-token")
    service.add_stream(other, 3, "http://radio.example/3")  # the limit is per token
    rows = service.streams(ACCOUNT)
    assert [(r.radio_id, r.url, r.callbacks) for r in rows] == [
        (1, "http://radio.example/1", None), (2, "http://radio.example/2b", None)
    ]  # fmt: skip
    assert rows[0].category == longpoll_category(ACCOUNT.token_md5, 1)
    assert len(service.streams(None)) == 3  # the operator's view: every account


def test_urls_pass_the_ssrf_check_of_the_settings(streams: StreamStore, tmp_path: Path) -> None:
    strict = StreamService(streams, Settings(db=tmp_path / "db"))  # the real check: no private addresses
    code, message = _code(strict.add_stream, ACCOUNT, 1, "http://127.0.0.1:9/live")
    assert code == 600 and "non-public address" in message
    code, _ = _code(strict.set_callback_url, ACCOUNT, "http://10.0.0.1/cb")
    assert code == 50  # a refused callback URL is AudD's 50, a refused stream 600
    assert _code(strict.add_stream, ACCOUNT, 1, "twitch:somechannel")[0] == 50
    assert _code(strict.add_stream, ACCOUNT, 1, "  ")[0] == 50
    assert strict.streams(ACCOUNT) == []
    listed = StreamService(streams, Settings(db=tmp_path / "db", allowed_networks=("127.0.0.0/8",)))
    listed.add_stream(ACCOUNT, 1, "http://127.0.0.1:9/live")  # the allow-list admits exactly its networks
    assert _code(listed.add_stream, ACCOUNT, 2, "http://10.0.0.1/live")[0] == 600
    permissive = StreamService(streams, Settings(db=tmp_path / "db", allow_private_urls=True))
    permissive.add_stream(ACCOUNT, 2, "http://10.0.0.1/live")
    assert [r.url for r in permissive.streams(ACCOUNT)] == ["http://127.0.0.1:9/live", "http://10.0.0.1/live"]


def test_callback_url_and_missing_streams(streams: StreamStore, tmp_path: Path) -> None:
    service = StreamService(streams, Settings(db=tmp_path / "db"), _allow_all)
    assert _code(service.callback_url, ACCOUNT)[0] == 19  # none set yet
    service.set_callback_url(ACCOUNT, "https://hooks.example/cb")
    assert service.callback_url(ACCOUNT) == "https://hooks.example/cb"
    assert _code(service.delete_stream, ACCOUNT, 7) == (50, "there is no stream with radio_id 7.")
    assert _code(service.set_stream_url, ACCOUNT, 7, "http://radio.example/7")[0] == 50
    service.add_stream(ACCOUNT, 7, "http://radio.example/7")
    service.set_stream_url(ACCOUNT, 7, "http://radio.example/7b")
    assert [r.url for r in service.streams(ACCOUNT)] == ["http://radio.example/7b"]
    service.delete_stream(ACCOUNT, 7)
    assert service.streams(ACCOUNT) == []
