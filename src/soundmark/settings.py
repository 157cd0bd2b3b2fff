"""Deployment settings: one typed object, read from SOUNDMARK_* environment variables and CLI flags.

Fingerprint parameters are not here: they belong to the index (see fingerprint/params.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUNDMARK_", extra="ignore")

    # --- store and ingest ---------------------------------------------------------------------
    db: Path = Field(Path("data/db"), description="store directory (catalog + index)")
    jobs: int = Field(0, ge=0, description="worker processes for ingest; 0 = one per core")
    batch_tracks: int = Field(64, ge=1, description="tracks committed together during ingest")
    max_track_hours: float = Field(6.0, gt=0, description="longest reference track ingested (hours)")

    # --- recognition --------------------------------------------------------------------------
    query_seconds: float = Field(20.0, gt=0, description="seconds of a recognize query analysed")
    min_score: float = Field(6.0, description="confidence a match must reach (-log10 p of a chance match)")
    min_votes: int = Field(4, ge=1, description="aligned hashes a candidate needs to be verified")

    # --- HTTP server --------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="address the server listens on")
    port: int = Field(8080, ge=1, le=65535, description="port the server listens on")
    workers: int = Field(0, ge=0, description="recognition worker processes; 0 = one per core")
    public_url: str = Field("", description="base URL for song_link (default: the request's own host)")
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest accepted upload / body (bytes)")
    max_enterprise_bytes: int = Field(1024 * 1024 * 1024, ge=1, description="largest upload to the enterprise endpoint")
    max_download_bytes: int = Field(10 * 1024 * 1024, ge=1, description="largest audio fetched for a url")
    download_timeout: float = Field(15.0, gt=0, description="seconds to connect to and read a url")
    allow_private_urls: bool = Field(False, description="let `url` reach loopback/private addresses")
    max_inflight: int = Field(64, ge=1, description="recognitions queued or running at once; more get 611")
    anonymous_per_day: int = Field(10, ge=0, description="requests per client IP per day without api_token")
    require_token: bool = Field(False, description="refuse every request without a valid api_token")
    log_json: bool = Field(True, description="structured JSON logs on stderr")

    # --- long recordings (scan / enterprise) --------------------------------------------------

    # --- live streams -------------------------------------------------------------------------
