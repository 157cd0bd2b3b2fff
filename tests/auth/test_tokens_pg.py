"""Tokens on a PostgreSQL catalog written by two nodes: an imported token value that another node
stored since this one looked is refused as a duplicate (ValueError, what the CLI and the web form
report), not as a database error, and the other node's token is untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.auth.tokens import TokenStore
from soundmark.catalog.sqlite import Catalog
from soundmark.store import use_catalog_url

VALUE = "imported-token-value-0001"


def test_a_value_imported_meanwhile_by_another_node_is_a_duplicate(tmp_path: Path, pg_catalog_url: str) -> None:
    for name in ("a", "b"):
        use_catalog_url(tmp_path / name, pg_catalog_url, create=True)
    a, b = Catalog(tmp_path / "a"), Catalog(tmp_path / "b")
    try:
        a.conn.execute("BEGIN")  # a snapshot from before b's insert: a's check cannot see it
        assert TokenStore(a).list() == []
        _, theirs = TokenStore(b).create("from b", value=VALUE)
        with pytest.raises(ValueError, match="already exists"):
            TokenStore(a).create("from a", value=VALUE)
        a.conn.execute("ROLLBACK")
        (only,) = TokenStore(a).list()
        assert only.id == theirs.id and only.name == "from b"
        assert TokenStore(a).authenticate(VALUE) == only
    finally:
        a.close()
        b.close()
