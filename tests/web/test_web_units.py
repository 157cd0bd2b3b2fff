"""The pieces of the web app that need no browser: which requests are a browser's page request,
and the session rows (expiry, logout, a revoked token, a missing scope)."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.auth.sessions import SessionStore
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.web.browser import accepts_html, is_browser_page_request
from soundmark.web.login import next_page


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
        ("application/xhtml+xml", True),
        ("TEXT/HTML; q=0.5", True),
        ("*/*", False),
        ("", False),
        ("application/json", False),
        ("text/html;q=0", False),
        ("text/html;q=zero", False),
    ],
)
def test_accepts_html(accept: str, html: bool) -> None:
    assert accepts_html(accept) is html


def _scope(method: str = "GET", query: bytes = b"", **headers: str) -> dict[str, object]:
    return {
        "type": "http", "method": method, "query_string": query,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip


def test_browser_page_requests() -> None:
    assert is_browser_page_request(_scope(accept="text/html"))
    assert not is_browser_page_request(_scope("POST", accept="text/html"))
    assert not is_browser_page_request(_scope(query=b"url=x", accept="text/html"))
    assert not is_browser_page_request(_scope(accept="text/html", content_length="12"))
    assert not is_browser_page_request({"type": "websocket", "headers": []})


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/tokens", "/tokens"), ("//evil.example/x", "/tokens"), ("https://evil.example", "/tokens"), ("/a b", "/tokens")],
)
def test_next_page_stays_on_this_site(value: str, expected: str) -> None:
    assert next_page(value) == expected


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path)
    yield c
    c.close()


def test_sessions_expire_end_and_follow_their_token(catalog: Catalog) -> None:
    tokens = TokenStore(catalog)
    _, admin = tokens.create("admin", scopes=["admin"])
    _, plain = tokens.create("plain", scopes=["recognize"])
    store = SessionStore(catalog.conn)
    opened = store.open(admin.id, admin.name, 3600, now=1000.0)
    stored = catalog.conn.execute("SELECT id_hash FROM web_sessions").fetchone()[0]
    assert opened.id not in stored  # only the hash is kept
    found = store.find(opened.id, "admin", now=2000.0)
    assert found is not None and found.token_id == admin.id and found.csrf == opened.session.csrf
    assert store.find(opened.id, "admin", now=4600.0) is None  # expired
    assert store.find(opened.id, "catalog:write", now=2000.0) is None  # the scope it was not opened for
    assert store.find("x" * 500, "admin") is None and store.find("", "admin") is None
    other = store.open(plain.id, plain.name, 3600, now=1000.0)
    assert store.find(other.id, "admin", now=2000.0) is None  # the token lacks the admin scope
    assert store.prune(now=10_000.0) == 2
    live = store.open(admin.id, admin.name, 3600)
    assert store.close(live.id) and not store.close(live.id)
    again = store.open(admin.id, admin.name, 3600)
    tokens.revoke(admin.id)
    assert store.find(again.id, "admin") is None  # a revoked token's sessions are refused
    with pytest.raises(ValueError):
        store.open(admin.id, admin.name, 0)
