"""soundmark serve: the AudD-compatible HTTP API on uvicorn, and the background work (live stream
monitoring, callbacks, enterprise jobs) as the process role (``--role``) asks."""

from __future__ import annotations

from pathlib import Path

import click

from soundmark.cli.common import db_option, load_settings
from soundmark.services.runtime import ROLES

ROLES_HELP = (
    "What this process runs [env SOUNDMARK_ROLE; default all]. "
    "api: the HTTP/WebSocket API only (recognize, upload, stream methods, longpoll, enterprise requests), "
    "no background work: added streams are monitored and queued enterprise jobs run on other nodes. "
    "monitor: the live stream monitor and the callback deliverer, serving only /healthz and /metrics. "
    "jobs: the enterprise job runner (it resumes interrupted jobs at start and runs the jobs api nodes "
    "queue), serving only /healthz and /metrics. "
    "all: everything in one process. Scale out with many api nodes, one monitor and one jobs node on "
    "one --db."
)


ROLES_EPILOG = "\b\nRoles (--role / SOUNDMARK_ROLE):\n" + "\n".join(f"  {k:<8} {v}" for k, v in ROLES.items())


@click.command("serve", epilog=ROLES_EPILOG)
@db_option
@click.option("--role", type=click.Choice(list(ROLES)), default=None, help=ROLES_HELP)
@click.option("--host", default=None, help="Address to listen on [env SOUNDMARK_HOST; default 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [env SOUNDMARK_PORT; default 8080].")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Recognition worker processes [env SOUNDMARK_WORKERS; default one per core].",
)
@click.option(
    "--public-url",
    default=None,
    help="Base URL used in song_link, e.g. https://music.example.com [default: the request's host].",
)
@click.option(
    "--allow-private-urls",
    is_flag=True,
    default=None,
    help="Let the `url` parameter reach loopback/private addresses (tests, intranets) "
    "[env SOUNDMARK_ALLOW_PRIVATE_URLS=1].",
)
@click.option(
    "--require-token",
    is_flag=True,
    default=None,
    help="Refuse requests without a valid api_token [env SOUNDMARK_REQUIRE_TOKEN=1].",
)
@click.option(
    "--anonymous-per-day", type=int, default=None, help="Requests per client IP per day without api_token [default 10]."
)
@click.option("--max-upload-mb", type=float, default=None, help="Largest upload or download in MB [default 10].")
@click.option(
    "--demo-token",
    is_flag=True,
    default=None,
    help="Accept AudD's public demo token `test` (recognize only, 10 requests per client per day) "
    "[env SOUNDMARK_DEMO_TOKEN=1].",
)
@click.option("--text-logs", is_flag=True, help="Human-readable logs instead of JSON lines.")
def serve_command(
    db: Path | None, role: str | None, host: str | None, port: int | None, workers: int | None, public_url: str | None,
    allow_private_urls: bool | None, require_token: bool | None, anonymous_per_day: int | None,
    max_upload_mb: float | None, demo_token: bool | None, text_logs: bool,
) -> None:  # fmt: skip
    """Serve the AudD-compatible HTTP API (recognize, upload, findLyrics, WebSocket, song pages)
    and run the background work, as --role says.

    The store is created if it does not exist yet. Create tokens with `soundmark token create`.
    """
    import uvicorn

    from soundmark.api.app import create_app
    from soundmark.api.logs import configure_logging

    max_bytes = int(max_upload_mb * 1024 * 1024) if max_upload_mb else None
    settings = load_settings(
        db=db, role=role, host=host, port=port, workers=workers, public_url=public_url,
        allow_private_urls=allow_private_urls, require_token=require_token,
        anonymous_per_day=anonymous_per_day, max_upload_bytes=max_bytes, max_download_bytes=max_bytes,
        demo_token=demo_token, log_json=False if text_logs else None,
    )  # fmt: skip
    configure_logging(settings.log_json)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, access_log=False, log_config=None,
        ws_max_size=settings.max_upload_bytes + 1024, timeout_graceful_shutdown=10,
    )  # fmt: skip
