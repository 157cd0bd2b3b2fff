"""Options and helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from soundmark.errors import StoreError
from soundmark.settings import Settings
from soundmark.store import Store, recorded_params, use_catalog_url

F = TypeVar("F", bound=Callable[..., Any])


def db_option(func: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="SOUNDMARK_DB",
        default=None,
        help="Store directory holding the catalog and index [env SOUNDMARK_DB; default data/db].",
    )(func)


def load_settings(**overrides: object) -> Settings:
    # Each override is a CLI flag of the matching Settings field; pydantic validates the values.
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:  # a bad SOUNDMARK_* variable or flag: say which, no traceback
        problems = "; ".join(
            f"SOUNDMARK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid setting: {problems}") from exc


def open_store(
    db: Path, *, create: bool = False, index_url: str | None = None, catalog_url: str | None = None
) -> Store:
    """The store at ``db``; ``index_url`` and ``catalog_url`` (``Settings``) for a store that may
    be new (a store records both: later openers need neither)."""
    try:
        use_catalog_url(db, catalog_url or "", create=create)
        return Store(db, recorded_params(db), create=create, index_url=index_url)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"
