"""Deployment settings: one typed object, read from SOUNDMARK_* environment variables and CLI flags.

Fingerprint parameters are not here: they belong to the index (see fingerprint/params.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from soundmark.catalog.sql import parse_pg_url
from soundmark.index.redis_url import parse_redis_url
from soundmark.net.addresses import parse_networks
from soundmark.streams.zone import AUDD_ZONE, parse_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUNDMARK_", extra="ignore")

    # --- store and ingest ---------------------------------------------------------------------
    db: Path = Field(Path("data/db"), description="store directory (catalog + index)")
    ingest_processes: int = Field(0, ge=0, description="worker processes for ingest; 0 = one per core")
    batch_tracks: int = Field(64, ge=1, description="tracks committed together during ingest")
    max_track_hours: float = Field(6.0, gt=0, description="longest reference track ingested (hours)")
    index_url: str = Field(
        "",
        description="fingerprint index on a Redis Cluster: redis://host:port[,host:port...][/key-prefix] (a new "
        "store records it; unset = the store's own segment files)",
    )
    catalog_url: str = Field(
        "",
        description="catalog, tokens, quotas, streams, events and jobs in PostgreSQL: postgresql://user[:pw]@host"
        "[:port]/dbname[?schema=NAME] (the store directory records it; needs index_url too; unset = the store's "
        "own SQLite file)",
    )

    # --- recognition --------------------------------------------------------------------------
    query_seconds: float = Field(20.0, gt=0, description="seconds of a recognize query analysed")
    min_score: float = Field(3.0, description="confidence a match must reach (-log10 p of a chance match)")
    min_votes: int = Field(4, ge=1, description="aligned hashes a candidate needs to be verified")

    # --- HTTP server --------------------------------------------------------------------------
    role: Literal["api", "monitor", "jobs", "all"] = Field(
        "all",
        description="what `serve` runs: api (the HTTP/WebSocket API, no background work), monitor (live "
        "streams + callbacks), jobs (enterprise jobs), all (everything); monitor and jobs serve only "
        "/healthz and /metrics",
    )
    host: str = Field("127.0.0.1", description="address the server listens on")
    port: int = Field(8080, ge=1, le=65535, description="port the server listens on")
    workers: int = Field(0, ge=0, description="recognition worker processes; 0 = one per core")
    public_url: str = Field("", description="base URL for song_link (default: the request's own host)")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest accepted upload / body (bytes)")
    max_enterprise_bytes: int = Field(1024 * 1024 * 1024, ge=1, description="largest upload to the enterprise endpoint")
    max_download_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest audio fetched for a url")
    download_timeout: float = Field(15.0, gt=0, description="seconds to connect to and read a url")
    allow_private_urls: bool = Field(False, description="let `url` reach loopback/private addresses")
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="networks (comma-separated CIDRs, e.g. 127.0.0.0/8,10.1.2.0/24) that urls, streams and "
        "callbacks may reach besides public addresses",
    )
    max_inflight: int = Field(64, ge=1, description="recognitions queued or running at once; more get 611")
    db_readers: int = Field(4, ge=1, le=64, description="threads (each its own connection) reading SQLite")
    db_write_queue: int = Field(
        1024, ge=1, description="database writes waiting for the one writer thread before submitters wait too"
    )
    anonymous_per_day: int = Field(10, ge=0, description="requests per client IP per day without api_token")
    require_token: bool = Field(False, description="refuse every request without a valid api_token")
    log_json: bool = Field(True, description="structured JSON logs on stderr")
    contact: str = Field("", description='"contact us" in error bodies (default: "the operator of this server")')
    docs_url: str = Field("", description='"see api documentation" in error bodies (default: this server\'s /docs)')
    demo_token: bool = Field(False, description="accept AudD's public demo token `test` (recognize only, limited)")
    demo_per_day: int = Field(10, ge=0, description="requests per client IP per day with the demo token `test`")
    web_session_hours: float = Field(
        12.0, gt=0, le=24 * 366, description="hours a web app login (an admin token exchanged for a cookie) lasts"
    )

    # --- long recordings (scan / enterprise) --------------------------------------------------
    scan_workers: int = Field(2, ge=0, description="worker processes analysing one long recording; 0 = one per core")
    max_jobs: int = Field(1, ge=1, description="long-recording jobs analysed at once; more wait in the queue")
    scan_hop_seconds: float = Field(5.0, gt=0, le=30, description="seconds between two analysis windows of a scan")
    max_enterprise_download_bytes: int = Field(
        512 * 1024 * 1024, ge=1, description="largest audio fetched for an enterprise `url`"
    )
    max_queued_jobs: int = Field(
        16,
        ge=1,
        description="enterprise jobs queued or running at once (each keeps its audio on disk); more get 611",
    )
    job_keep_days: float = Field(7.0, gt=0, description="days a finished job and its result are kept")
    max_job_hours: float = Field(
        24.0, gt=0, le=24 * 366, description="hours of a recording a job analyses at most; the rest is ignored"
    )
    job_max_attempts: int = Field(
        2, ge=1, description="starts of a job that never ended (the server died) after which a restart fails it"
    )
    job_lease_seconds: float = Field(
        20.0,
        ge=2,
        le=3600,
        description="seconds a job node's claim on a running job lasts unless renewed (it is renewed every "
        "quarter of it): how long a dead node's job waits before another job node resumes it",
    )

    # --- live streams -------------------------------------------------------------------------
    stream_window_seconds: float = Field(8.0, gt=1, description="seconds of a live stream recognised at once")
    stream_hop_seconds: float = Field(4.0, gt=0, description="seconds between two recognitions of a live stream")
    stream_song_gap_seconds: float = Field(
        12.0, gt=0, description="seconds without a match after which a playing song counts as ended"
    )
    stream_silence_seconds: float = Field(
        60.0, gt=0, description="seconds of silence before a stream is reported as noise-only (651)"
    )
    stream_read_timeout: float = Field(15.0, gt=0, description="seconds without data before a stream reconnects")
    stream_reconnect_max_seconds: float = Field(
        60.0, gt=0, description="longest wait between reconnection attempts (exponential backoff)"
    )
    streams_per_token: int = Field(100, ge=0, description="streams one token may add; more get error 902")
    stream_sync_seconds: float = Field(
        5.0, gt=0, description="how often the server picks up streams changed in the store (e.g. by the CLI)"
    )
    callback_timeout: float = Field(10.0, gt=0, description="seconds a callback POST may take")
    callback_retry_max_seconds: float = Field(
        300.0, gt=0, description="longest wait between two callback delivery attempts (exponential backoff)"
    )
    callback_max_age_hours: float = Field(72.0, gt=0, description="undelivered callbacks older than this are dropped")
    stream_events_max: int = Field(
        100_000, ge=100, description="stream events kept for callbacks and longpoll; the oldest finished go first"
    )
    callback_timezone: str = Field(
        AUDD_ZONE,
        description="time zone of the `timestamp` in stream results: an IANA name or an offset such as +03:00 "
        "(default: UTC+3, the zone AudD's own clients read them in)",
    )

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, str):  # the environment variable: a comma-separated list
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list | tuple):
            parse_networks(str(v) for v in value)  # a typo fails at start, not at the first request
        return value

    @field_validator("index_url")
    @classmethod
    def _index_url(cls, value: str) -> str:
        if value.strip():
            parse_redis_url(value)  # a malformed URL fails at start, not at the first lookup
        return value.strip()

    @field_validator("catalog_url")
    @classmethod
    def _catalog_url(cls, value: str) -> str:
        if value.strip():
            parse_pg_url(value)  # a malformed URL fails at start, not at the first query
        return value.strip()

    @field_validator("callback_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        parse_zone(value)  # a zone that cannot be used fails at start, not at the first callback
        return value.strip()
