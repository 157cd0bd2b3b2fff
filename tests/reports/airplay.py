"""Plays recorded the way the stream monitor records them: ``EventSink.song`` (streams/callbacks.py),
the call a stream worker makes when a song ends (``final=True``) or, with ``callbacks=before``,
when it starts — into a real store's catalog, on tracks whose metadata was set through the catalog
use case."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from soundmark.auth.tokens import TokenStore
from soundmark.catalog.models import Track
from soundmark.catalog.writer import LocalDatabase
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.catalog import MetaEdit, TrackRef, edit_metadata
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.settings import Settings
from soundmark.store import Store
from soundmark.streams.callbacks import EventSink
from soundmark.streams.monitor import StreamJob
from soundmark.streams.registry import StreamStore, longpoll_category, token_md5
from soundmark.streams.tracker import Play

STATION_TOKEN = "station-owner-token-0001"
BASE = "http://127.0.0.1:4000"

# (radio_id, track index, start in UTC, play_length; None: reported at its start, callbacks=before)
PLAYS: list[tuple[int, int, str, int | None]] = [
    (1, 0, "2026-10-31 23:59:59", 100),  # the second before the range
    (1, 0, "2026-11-01 10:00:00", 200),
    (1, 1, "2026-11-01 11:00:00", 180),
    (2, 0, "2026-11-01 12:00:00", 210),
    (1, 0, "2026-11-02 09:00:00", 200),
    (2, 2, "2026-11-02 23:58:00", 300),  # straddles midnight: counts on 11-02, whole
    (1, 1, "2026-11-03 00:00:00", 180),  # exactly midnight: 11-03
    (2, 2, "2026-11-03 12:00:00", None),  # callbacks=before: no length
    (1, 0, "2026-11-04 00:00:00", 100),  # the range's end (excluded)
]

# The report of [2026-11-01, 2026-11-04) in UTC, worked out by hand from PLAYS.
EXPECTED_PLAYS = 7
EXPECTED_SECONDS = 200 + 180 + 210 + 200 + 300 + 180
EXPECTED_DAYS = {"2026-11-01": (3, 590), "2026-11-02": (2, 500), "2026-11-03": (2, 180)}
# track index → (plays, seconds), in the report's order (most played, then longest played)
EXPECTED_TRACKS = [(0, 3, 610), (1, 2, 360), (2, 2, 300)]
EXPECTED_STATIONS = {1: (4, 760, 2), 2: (3, 510, 2)}  # radio_id → (plays, seconds, tracks)

METADATA = [
    MetaEdit(isrc="USRC17607839", label="Label One", external={"musicbrainz_recording_id": "mbid-one"}),
    MetaEdit(isrc="GBAYE0000001", upc="012345678905"),
    MetaEdit(artist="Other Band"),
]


@dataclass(frozen=True)
class Airplay:
    """A store copy whose stations played PLAYS: its directory, the described tracks, the token."""

    db: Path
    tracks: list[Track]
    token_id: int


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def describe_tracks(db: Path) -> list[Track]:
    """The first three tracks of the store with METADATA applied through the catalog use case."""
    with Store(db, FingerprintParams()) as store:
        tracks = store.catalog.list_tracks()[:3]
        return [edit_metadata(store, TrackRef(track_id=t.id), e) for t, e in zip(tracks, METADATA, strict=True)]


def record_plays(
    db: Path,
    track_ids: list[int],
    plays: list[tuple[int, int, str, int | None]] = PLAYS,
    *,
    callback_timezone: str = "+03:00",
) -> int:
    """Add the stations (radio 1 and 2 of one token) and record ``plays``; returns the token id."""
    settings = Settings(db=db, callback_timezone=callback_timezone)
    database = LocalDatabase(db)
    try:
        token_id = database.write(lambda c: TokenStore(c).create("station owner", value=STATION_TOKEN)[1].id)
        md5 = token_md5(STATION_TOKEN)
        streams = StreamStore(db, database)
        for radio in sorted({p[0] for p in plays}):
            streams.add_stream(token_id, md5, radio, f"http://radio.example/{radio}.mp3", None)

        async def track(track_id: int) -> Track | None:
            return database.read(lambda c: c.get_track(track_id))

        sink = EventSink(streams, settings, track, BASE, lambda: None)

        async def run() -> None:
            for radio, index, start, length in plays:
                tid, t0 = track_ids[index], utc(start)
                match = WorkerMatch(tid, 3.0, 40.0, 1.0, 1.0)
                play = Play(tid, t0, t0 + (length if length is not None else 15), 40.0, match)
                before = length is None
                job = StreamJob(radio, radio, "", before, token_id, longpoll_category(md5, radio))
                await sink.song(job, play, final=not before)

        # A thread of its own: under Playwright's sync API (the web tests) this thread has a loop running.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()
        return token_id
    finally:
        database.close()
