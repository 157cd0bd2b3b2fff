"""Every deployment setting is documented: in its field description and in the README table."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.settings import Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_setting_is_documented(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description, f"Settings.{name} has no description"
    assert f"SOUNDMARK_{name.upper()}" in README, f"README's configuration table lacks SOUNDMARK_{name.upper()}"


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDMARK_PORT", "9999")
    monkeypatch.setenv("SOUNDMARK_ALLOW_PRIVATE_URLS", "1")
    s = Settings()
    assert s.port == 9999 and s.allow_private_urls is True
