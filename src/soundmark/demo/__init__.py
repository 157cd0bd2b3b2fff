"""Synthetic music for the demo catalog and the tests: composition, room simulation, catalog files."""

from soundmark.demo.catalog import (
    DEMO_CLIP_SECONDS,
    DEMO_CLIP_START,
    DEMO_CLIP_TRACK,
    DEMO_SAMPLE_RATE,
    DEMO_TRACKS,
    build_demo_catalog,
    track_filename,
    write_wav,
)
from soundmark.demo.compose import compose_piece
from soundmark.demo.room import over_the_air, over_the_air_parts

__all__ = [
    "DEMO_CLIP_SECONDS",
    "DEMO_CLIP_START",
    "DEMO_CLIP_TRACK",
    "DEMO_SAMPLE_RATE",
    "DEMO_TRACKS",
    "build_demo_catalog",
    "compose_piece",
    "over_the_air",
    "over_the_air_parts",
    "track_filename",
    "write_wav",
]
