"""Deployment settings: one typed object, read from SOUNDMARK_* environment variables and CLI flags.

Fingerprint parameters are not here: they belong to the index (see fingerprint/params.py).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOUNDMARK_", extra="ignore")

    db: Path = Field(Path("data/db"), description="store directory (catalog + index)")
    jobs: int = Field(0, ge=0, description="worker processes for ingest; 0 = one per core")
    batch_tracks: int = Field(64, ge=1, description="tracks committed together during ingest")
    max_track_hours: float = Field(6.0, gt=0, description="longest reference track ingested (hours)")
    query_seconds: float = Field(20.0, gt=0, description="seconds of a recognize query analysed")
    min_score: float = Field(6.0, description="confidence a match must reach (-log10 p of a chance match)")
    min_votes: int = Field(4, ge=1, description="aligned hashes a candidate needs to be verified")
