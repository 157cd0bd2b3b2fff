"""Web sessions (auth/sessions.py) on a PostgreSQL catalog: opened on one node's connection, found
on another's, refused once expired, closed or when their token is revoked or lacks the scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soundmark.auth.sessions import SessionStore
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.store import use_catalog_url


@pytest.fixture()
def two_nodes(tmp_path: Path, pg_catalog_url: str) -> Iterator[tuple[Catalog, Catalog]]:
    """Two directories joined to one PostgreSQL catalog (two nodes), each with its connection."""
    use_catalog_url(tmp_path / "a", pg_catalog_url, create=True)
    use_catalog_url(tmp_path / "b", pg_catalog_url, create=True)
    a = Catalog(tmp_path / "a")
    b = Catalog(tmp_path / "b", readonly=True)
    yield a, b
    a.close()
    b.close()


def test_a_session_opened_on_one_node_is_found_on_the_other(two_nodes: tuple[Catalog, Catalog]) -> None:
    a, b = two_nodes
    _, admin = TokenStore(a).create("operator", scopes=["admin"])
    opened = SessionStore(a.conn).open(admin.id, admin.name, 3600.0, now=1000.0)
    found = SessionStore(b.conn).find(opened.id, "admin", now=2000.0)
    assert found == opened.session and found.expires_at == 4600.0
    assert SessionStore(b.conn).find(opened.id, "admin", now=4600.0) is None  # expired
    assert SessionStore(b.conn).find(opened.id, "streams", now=2000.0) is None  # not its scope
    assert SessionStore(b.conn).find(opened.id + "x", "admin", now=2000.0) is None
    assert SessionStore(b.conn).find("\x00" * 10, "admin", now=2000.0) is None  # not even asked


def test_revoking_the_token_ends_its_sessions_everywhere(two_nodes: tuple[Catalog, Catalog]) -> None:
    a, b = two_nodes
    tokens = TokenStore(a)
    _, admin = tokens.create("operator", scopes=["admin"])
    opened = SessionStore(a.conn).open(admin.id, admin.name, 3600.0)
    assert SessionStore(b.conn).find(opened.id, "admin") is not None
    assert tokens.revoke(admin.id)
    assert SessionStore(b.conn).find(opened.id, "admin") is None


def test_close_and_prune(two_nodes: tuple[Catalog, Catalog]) -> None:
    a, _ = two_nodes
    _, admin = TokenStore(a).create("operator", scopes=["admin"])
    sessions = SessionStore(a.conn)
    old = sessions.open(admin.id, admin.name, 10.0, now=0.0)
    live = sessions.open(admin.id, admin.name, 10.0, now=100.0)
    assert sessions.prune(now=50.0) == 1
    assert sessions.find(old.id, "admin", now=5.0) is None
    assert sessions.close(live.id) and not sessions.close(live.id)
    assert sessions.find(live.id, "admin", now=105.0) is None
