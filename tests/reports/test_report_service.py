"""The report use case over plays recorded through the monitor's write path (airplay.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airplay import (
    EXPECTED_DAYS,
    EXPECTED_PLAYS,
    EXPECTED_SECONDS,
    EXPECTED_STATIONS,
    EXPECTED_TRACKS,
    PLAYS,
    Airplay,
    describe_tracks,
    record_plays,
)

from soundmark.catalog.writer import LocalDatabase
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.catalog import remove_tracks
from soundmark.services.errors import ServiceError
from soundmark.services.reports import ReportRange, ReportService, play_start
from soundmark.store import Store
from soundmark.streams.registry import StreamStore
from soundmark.streams.zone import parse_zone

NOVEMBER_1_TO_4 = ("2026-11-01", "2026-11-04")


def _service(db: Path, callback_timezone: str = "+03:00") -> tuple[LocalDatabase, ReportService]:
    database = LocalDatabase(db)
    return database, ReportService(database, callback_timezone)


def test_totals_days_stations_and_top_tracks(airplay: Airplay) -> None:
    database, service = _service(airplay.db)
    try:
        report = service.report(ReportRange.parse(*NOVEMBER_1_TO_4))
    finally:
        database.close()
    assert (report.plays, report.seconds, report.plays_without_length) == (EXPECTED_PLAYS, EXPECTED_SECONDS, 1)
    assert {d.day.isoformat(): (d.plays, d.seconds) for d in report.days} == EXPECTED_DAYS
    got = {s.radio_id: (s.plays, s.seconds, len(s.tracks)) for s in report.stations}
    assert got == EXPECTED_STATIONS
    assert [s.url for s in report.stations] == ["http://radio.example/1.mp3", "http://radio.example/2.mp3"]
    assert {s.token_name for s in report.stations} == {"station owner"}
    ids = [t.id for t in airplay.tracks]
    assert [(t.track_id, t.plays, t.seconds) for t in report.tracks] == [(ids[i], n, s) for i, n, s in EXPECTED_TRACKS]
    first = report.tracks[0]
    assert (first.isrc, first.label, first.external) == (
        "USRC17607839", "Label One", {"musicbrainz_recording_id": "mbid-one"}
    )  # fmt: skip
    assert (report.tracks[1].isrc, report.tracks[1].upc) == ("GBAYE0000001", "012345678905")
    assert report.tracks[2].artist == "Other Band"
    assert [t.track_id for t in report.top_tracks(1)] == [ids[0]]
    assert len(first.stations) == 2  # played on radio 1 and 2


def test_range_edges_midnight_and_end_excluded(airplay: Airplay) -> None:
    """A play belongs to the day it started: 23:58 + 300 s counts on 11-02 with all 300 s; a play
    at 00:00:00 of ``to`` is out; one a second before ``from`` is out."""
    database, service = _service(airplay.db)
    try:
        day2 = service.report(ReportRange.parse("2026-11-02", "2026-11-03"))
        day3 = service.report(ReportRange.parse("2026-11-03", "2026-11-04"))
        log = service.plays(ReportRange.parse("2026-10-31", "2026-11-05"))
    finally:
        database.close()
    assert (day2.plays, day2.seconds) == (2, 500)
    assert (day3.plays, day3.seconds) == (2, 180)
    assert [p.start.strftime("%Y-%m-%d %H:%M:%S") for p in log] == [p[2] for p in PLAYS]
    assert [p.play_length for p in log] == [p[3] for p in PLAYS]
    assert [p.radio_id for p in log] == [p[0] for p in PLAYS]


def test_one_station_and_another_zone(airplay: Airplay) -> None:
    database, service = _service(airplay.db)
    try:
        radio2 = service.report(ReportRange.parse(*NOVEMBER_1_TO_4, radio_id=2))
        # Days of UTC+3: [10-31 21:00Z, 11-03 21:00Z) takes in the play of 10-31 23:59:59Z.
        moscow = service.report(ReportRange.parse(*NOVEMBER_1_TO_4, tz="Europe/Moscow"))
    finally:
        database.close()
    assert (radio2.plays, radio2.seconds, [s.radio_id for s in radio2.stations]) == (3, 510, [2])
    assert moscow.plays == 8
    days = {d.day.isoformat(): d.plays for d in moscow.days}
    assert days == {"2026-11-01": 4, "2026-11-02": 1, "2026-11-03": 3}


@pytest.mark.parametrize("zone", ["+03:00", "UTC", "-05:30", "Europe/Berlin"])
def test_plays_are_placed_by_the_zone_their_timestamps_were_written_in(store_copy: Path, zone: str) -> None:
    tracks = describe_tracks(store_copy)
    record_plays(store_copy, [t.id for t in tracks], callback_timezone=zone)
    database, service = _service(store_copy, zone)
    try:
        report = service.report(ReportRange.parse(*NOVEMBER_1_TO_4))
    finally:
        database.close()
    assert (report.plays, report.seconds) == (EXPECTED_PLAYS, EXPECTED_SECONDS)
    assert {d.day.isoformat(): (d.plays, d.seconds) for d in report.days} == EXPECTED_DAYS


def test_plays_outlive_the_event_queue_and_removed_tracks(airplay: Airplay) -> None:
    """Pruning the callback queue to nothing and removing a played track leave the log whole:
    the removed track keeps the title and ISRC it was reported with."""
    database = LocalDatabase(airplay.db)
    try:
        streams = StreamStore(airplay.db, database)
        streams.prune(max_events=0, max_age_s=1.0)
        assert database.read(lambda c: c.conn.execute("SELECT COUNT(*) FROM stream_events").fetchone()[0]) == 0
    finally:
        database.close()
    with Store(airplay.db, FingerprintParams()) as store:
        assert remove_tracks(store, [airplay.tracks[0].id]).removed == (airplay.tracks[0].id,)
    database, service = _service(airplay.db)
    try:
        report = service.report(ReportRange.parse(*NOVEMBER_1_TO_4))
    finally:
        database.close()
    assert (report.plays, report.seconds) == (EXPECTED_PLAYS, EXPECTED_SECONDS)
    first = report.tracks[0]
    assert (first.track_id, first.title, first.isrc) == (
        airplay.tracks[0].id,
        airplay.tracks[0].meta.title,
        "USRC17607839",
    )
    assert first.external == {}  # the catalog's external ids went with the track


def test_paging_and_the_awaited_twins(airplay: Airplay) -> None:
    database, service = _service(airplay.db)
    rng = ReportRange.parse(*NOVEMBER_1_TO_4)
    try:
        whole = service.plays(rng)
        pages = [service.plays(rng, offset, 3) for offset in (0, 3, 6, 9)]
        report = asyncio.run(service.areport(rng))
        page = asyncio.run(service.aplays(rng, 2, 2))
    finally:
        database.close()
    assert len(whole) == EXPECTED_PLAYS
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [p for chunk in pages for p in chunk] == whole
    assert page == whole[2:4]
    assert report.plays == EXPECTED_PLAYS


@pytest.mark.parametrize(
    ("start", "end", "needle"),
    [
        ("2026-11-31", "2026-12-01", "`from` must be a date"),
        ("2026-11-01", "yesterday", "`to` must be a date"),
        ("2026-11-05", "2026-11-01", "must be after"),
        ("2026-11-01", "2026-11-01", "must be after"),
        ("2025-01-01", "2026-01-03", "at most 366"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(start: str, end: str, needle: str) -> None:
    with pytest.raises(ServiceError) as info:
        ReportRange.parse(start, end)
    assert info.value.code == 50
    assert needle in str(info.value)


def test_bad_zone_and_radio_id_are_refused() -> None:
    with pytest.raises(ServiceError, match="unknown time zone"):
        ReportRange.parse(*NOVEMBER_1_TO_4, tz="Mars/Olympus")
    with pytest.raises(ServiceError, match="radio_id"):
        ReportRange.parse(*NOVEMBER_1_TO_4, radio_id="seven")
    assert ReportRange.parse("2025-01-01", "2026-01-02").days()[-1].isoformat() == "2026-01-01"  # 366 days


@pytest.mark.parametrize("read_in", ["+03:00", "UTC", "America/New_York"])
def test_a_fresh_play_is_placed_by_its_write_time_whatever_zone_is_configured(store_copy: Path, read_in: str) -> None:
    """The server wrote in +05:45; a report run with another SOUNDMARK_CALLBACK_TIMEZONE still
    places a play it wrote seconds after the play ended at its true start."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(seconds=200)
    tracks = describe_tracks(store_copy)
    record_plays(store_copy, [t.id for t in tracks], [(5, 0, start.strftime("%Y-%m-%d %H:%M:%S"), 195)],
                 callback_timezone="+05:45")  # fmt: skip
    database, service = _service(store_copy, read_in)
    try:
        day = start.date()
        (play,) = service.plays(ReportRange.parse(day.isoformat(), (day + timedelta(days=1)).isoformat()))
    finally:
        database.close()
    assert play.start == start


def test_play_start_falls_back_to_the_configured_zone() -> None:
    zone = parse_zone("+03:00")
    written = datetime(2026, 11, 2, 10, 0, tzinfo=UTC).timestamp() * 1000  # 13:00 +03:00, the play's end
    assert play_start("2026-11-02 12:57:00", int(written), 180, zone) == datetime(2026, 11, 2, 9, 57, tzinfo=UTC)
    # written a day later (a backlog, a copied store): the timestamp is read in the configured zone
    late = int(written + 86_400_000 + 600_000)
    assert play_start("2026-11-02 12:57:00", late, 180, zone) == datetime(2026, 11, 2, 9, 57, tzinfo=UTC)
    assert play_start("2026-11-02 12:57:00", late, 180, parse_zone("UTC")) == datetime(2026, 11, 2, 12, 57, tzinfo=UTC)
    assert play_start("yesterday", late, 180, zone) is None
