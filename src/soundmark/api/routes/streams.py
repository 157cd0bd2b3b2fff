"""Streams feature: AudD methods, routes and background work (filled in by its issue)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter

from soundmark.api.state import AppState

router = APIRouter()
HANDLERS: dict[str, object] = {}


@asynccontextmanager
async def lifespan(state: AppState) -> AsyncIterator[None]:
    yield
