"""soundmark token create / list / revoke: API tokens for the HTTP server."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from soundmark.auth.tokens import DEFAULT_SCOPES, TokenStore
from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.services.accounts import AccountService
from soundmark.services.errors import ServiceError
from soundmark.store import Store


def _accounts(store: Store) -> AccountService:
    return AccountService(TokenStore(store.catalog))


@click.group("token")
def token_group() -> None:
    """Create, list and revoke API tokens (api_token) of the HTTP server."""


@token_group.command("create")
@db_option
@click.option("--name", required=True, help="Who or what the token is for (shown by `token list`).")
@click.option(
    "--limit-per-month",
    type=click.IntRange(min=0),
    default=None,
    help="Requests the token may make per calendar month (UTC) [default: unlimited].",
)
@click.option(
    "--scopes",
    default=",".join(DEFAULT_SCOPES),
    show_default=True,
    help="Comma-separated methods the token may use.",
)
@click.option(
    "--value",
    default=None,
    help="Use this token instead of a random one (e.g. the token existing AudD clients already send); "
    "8 to 512 characters. Read from the environment variable SOUNDMARK_TOKEN_VALUE when set.",
    envvar="SOUNDMARK_TOKEN_VALUE",
)
def create_command(db: Path | None, name: str, limit_per_month: int | None, scopes: str, value: str | None) -> None:
    """Create a token. It is printed once, alone on the last line of stdout; only its hash is kept."""
    settings = load_settings(db=db)
    scope_list = [s.strip() for s in scopes.split(",") if s.strip()]
    with open_store(settings.db, create=True, index_url=settings.index_url, catalog_url=settings.catalog_url) as store:
        try:
            new = _accounts(store).create(name, limit_per_month=limit_per_month, scopes=scope_list, value=value)
        except ServiceError as exc:
            raise click.UsageError(str(exc)) from exc
    token, info = new.token, new.view
    limit = "unlimited" if info.limit_per_month is None else f"{info.limit_per_month}/month"
    scope_text = ",".join(sorted(info.scopes))
    click.echo(
        f"created token {info.id} {info.name!r} (prefix {info.prefix}, scopes {scope_text}, {limit})"
        f" in {settings.db}; store it now, it cannot be shown again",
        err=True,
    )
    click.echo(token)


@token_group.command("list")
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per token.")
def list_command(db: Path | None, as_json: bool) -> None:
    """List tokens with their prefix, name, scopes, monthly limit and this month's usage."""
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        tokens = _accounts(store).list()
    for info in tokens:
        if as_json:
            click.echo(json.dumps({**asdict(info), "scopes": list(info.scopes)}))
            continue
        limit = "unlimited" if info.limit_per_month is None else str(info.limit_per_month)
        state = f"revoked {info.revoked_at}" if info.revoked else "active"
        click.echo(
            f"{info.id:>4}  {info.prefix}  {info.name}  used {info.used_this_month}/{limit} this month"
            f"  [{','.join(sorted(info.scopes))}]  {state}"
        )


@token_group.command("revoke")
@db_option
@click.argument("id_or_prefix")
def revoke_command(db: Path | None, id_or_prefix: str) -> None:
    """Revoke the token with this id or prefix (as `token list` shows them)."""
    settings = load_settings(db=db)
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        try:
            _accounts(store).revoke(id_or_prefix)
        except ServiceError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked token {id_or_prefix}")
