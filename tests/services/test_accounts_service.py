"""The account use cases on a real store: tokens created, listed with usage, looked up, revoked."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.auth.tokens import TokenStore
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.accounts import AccountService
from soundmark.services.errors import ServiceError
from soundmark.store import Store


def test_tokens_are_created_counted_and_revoked(tmp_path: Path) -> None:
    with Store(tmp_path / "db", FingerprintParams(), create=True) as store:
        tokens = TokenStore(store.catalog)
        accounts = AccountService(tokens)
        new = accounts.create("radio", scopes=["recognize", "streams"], limit_per_month=5)
        assert new.view.name == "radio" and new.view.scopes == ("recognize", "streams")
        assert new.token not in repr(new.view) and new.view.prefix == new.token[: len(new.view.prefix)]
        info = accounts.authenticate(new.token, "streams")
        assert tokens.consume(info) and tokens.consume(info)
        assert accounts.usage(str(new.view.id)).used_this_month == 2
        assert accounts.usage(new.view.prefix).limit_per_month == 5
        with pytest.raises(ServiceError) as scope:
            accounts.authenticate(new.token, "catalog:write")
        assert scope.value.code == 904
        with pytest.raises(ServiceError) as bad:
            accounts.create("", scopes=["recognize"])
        assert bad.value.code == 50
        accounts.revoke(str(new.view.id))
        [view] = accounts.list()
        assert view.revoked and view.revoked_at is not None
        with pytest.raises(ServiceError) as revoked:
            accounts.authenticate(new.token, "streams")
        assert revoked.value.code == 900
        with pytest.raises(ServiceError) as twice:
            accounts.revoke(str(new.view.id))
        assert twice.value.code == 50 and "no active token" in str(twice.value)
