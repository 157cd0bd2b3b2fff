"""Airplay reports: what the monitored streams played over a range of days — per station, per
track (with the catalog's ISRC, UPC, audio_id and external ids), per day — and the play log
itself (each play: station, start, length, track, score), which royalty reports are made from.

The plays come from the airplay log (``plays``, catalog/schema_plays.py), which a trigger fills
from every song result the monitor writes. One set of rules for every transport (``soundmark
report``, ``GET /reports.*``):

- a range is ``[start, end)`` in whole days of the report's zone (``tz``, UTC by default), at
  most ``MAX_DAYS`` long; a play belongs to the day (and the range) its start falls in, so a song
  that straddles midnight counts once, on the day it began, with its whole length;
- a play's start is its callback ``timestamp`` (local time, no zone) placed by the event's own
  write time when that is unambiguous (``play_start``), else read in ``callback_timezone`` (with
  an IANA zone the repeated hour when clocks go back reads as its first pass);
- play time adds up ``play_length``; a play reported at its start (``callbacks=before``) has
  none: it counts as a play, and in ``plays_without_length``;
- a track is grouped by its catalog id and described by the catalog's current metadata; a play
  of a track removed since keeps the title and ids it was reported with.

Reads run on a ``Database`` (the server's read pool, or the CLI's connection): ``report`` and
``plays`` block, ``areport`` and ``aplays`` are their awaited twins, and ``each_play`` hands the
play log to a consumer inside the read, so a year of plays is written out without being held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from itertools import islice
from typing import TypeVar

from soundmark.catalog.models import Track
from soundmark.catalog.sql import Row
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.writer import Database, read_async
from soundmark.services.errors import ServiceError
from soundmark.streams.zone import TIMESTAMP_FORMAT, parse_zone

T = TypeVar("T")

MAX_DAYS = 366  # the longest range one report covers
# The local-time text filter is widened by the widest gap between two zones (UTC-12 to UTC+14)
# and a DST change's repeated hour: a play written in any zone is found, then placed exactly.
ZONE_SLACK = timedelta(hours=27)
QUARTER_HOUR = 900  # seconds: every zone's offset is a whole number of them
MAX_OFFSET = 14 * 3600
CLEAN_LAG = 120  # seconds between a play's end (its start, callbacks=before) and its event, at most

StationKey = tuple[int, int]  # (token_id, radio_id): radio ids are chosen per token


@dataclass(frozen=True)
class ReportRange:
    """Days ``[start, end)`` in the zone ``tz``, of one station (``radio_id``) or all."""

    start: date
    end: date
    radio_id: int | None = None
    tz: str = "UTC"

    @classmethod
    def parse(
        cls, start: str, end: str, radio_id: str | int | None = None, tz: str = "UTC", *, max_days: int = MAX_DAYS
    ) -> ReportRange:
        """The range the texts name (``YYYY-MM-DD``); a ServiceError (AudD's 50) saying what is wrong."""
        first, last = _day(start, "from"), _day(end, "to")
        if last <= first:
            raise ServiceError(50, f"`to` ({last}) must be after `from` ({first}): the range is [from, to).")
        if (last - first).days > max_days:
            raise ServiceError(50, f"the range is {(last - first).days} days; a report covers at most {max_days}.")
        try:
            parse_zone(tz)
        except ValueError as exc:
            raise ServiceError(50, str(exc)) from None
        return cls(first, last, _radio_id(radio_id), tz)

    @property
    def zone(self) -> tzinfo:
        return parse_zone(self.tz)

    def bounds(self) -> tuple[datetime, datetime]:
        """The first and the first excluded instant, in UTC."""
        z = self.zone
        lo = datetime.combine(self.start, datetime.min.time(), z)
        hi = datetime.combine(self.end, datetime.min.time(), z)
        return lo.astimezone(UTC), hi.astimezone(UTC)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days)]


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise ServiceError(50, f"`{name}` must be a date as YYYY-MM-DD, not {text!r}.") from None


def _radio_id(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ServiceError(50, f"`radio_id` must be a whole number, not {value!r}.") from None


@dataclass(frozen=True)
class Play:
    """One play of the log; ``start`` in the report's zone."""

    token_id: int
    radio_id: int
    start: datetime
    play_length: int | None
    track_id: int | None
    title: str
    artist: str
    album: str
    label: str
    isrc: str
    upc: str
    audio_id: int | None
    score: int | None


@dataclass
class TrackTotal:
    track_id: int | None
    title: str
    artist: str
    album: str
    label: str
    isrc: str
    upc: str
    audio_id: int | None
    external: dict[str, str] = field(default_factory=dict)
    plays: int = 0
    seconds: int = 0
    stations: set[StationKey] = field(default_factory=set)


@dataclass
class StationTotal:
    token_id: int
    radio_id: int
    token_name: str = ""
    url: str = ""
    plays: int = 0
    seconds: int = 0
    tracks: set[object] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"radio {self.radio_id}" + (f" ({self.token_name})" if self.token_name else "")


@dataclass(frozen=True)
class DayTotal:
    day: date
    plays: int
    seconds: int


@dataclass(frozen=True)
class Report:
    range: ReportRange
    plays: int
    seconds: int
    plays_without_length: int
    days: list[DayTotal]
    stations: list[StationTotal]
    tracks: list[TrackTotal]  # most played first (then longest played, artist, title)

    def top_tracks(self, n: int) -> list[TrackTotal]:
        return self.tracks[:n]


class ReportService:
    """The report use cases over one catalog; ``callback_timezone`` is the settings' value."""

    def __init__(self, db: Database, callback_timezone: str):
        parse_zone(callback_timezone)  # a bad zone fails here, not inside a read
        self._db, self._zone = db, callback_timezone

    def report(self, rng: ReportRange) -> Report:
        return self._db.read(self._report_read(rng))

    async def areport(self, rng: ReportRange) -> Report:
        found: Report = await read_async(self._db, self._report_read(rng))
        return found

    def plays(self, rng: ReportRange, offset: int = 0, limit: int | None = None) -> list[Play]:
        return self.each_play(rng, _page(offset, limit))

    async def aplays(self, rng: ReportRange, offset: int = 0, limit: int | None = None) -> list[Play]:
        page: list[Play] = await read_async(self._db, self._each_read(rng, _page(offset, limit)))
        return page

    def each_play(self, rng: ReportRange, consume: Callable[[Iterator[Play]], T]) -> T:
        """``consume(plays)`` inside the read: the range's plays, oldest first, one at a time."""
        return self._db.read(self._each_read(rng, consume))

    async def aeach_play(self, rng: ReportRange, consume: Callable[[Iterator[Play]], T]) -> T:
        result: T = await read_async(self._db, self._each_read(rng, consume))
        return result

    def _each_read(self, rng: ReportRange, consume: Callable[[Iterator[Play]], T]) -> Callable[[Catalog], T]:
        def read(c: Catalog) -> T:
            return consume(read_plays(c, rng, self._zone))

        return read

    def _report_read(self, rng: ReportRange) -> Callable[[Catalog], Report]:
        def read(c: Catalog) -> Report:
            return summarize(read_plays(c, rng, self._zone), rng, c)

        return read


def _page(offset: int, limit: int | None) -> Callable[[Iterator[Play]], list[Play]]:
    def take(plays: Iterator[Play]) -> list[Play]:
        return list(islice(plays, max(0, offset), None if limit is None else max(0, offset) + max(0, limit)))

    return take


_PLAYS_SQL = (
    "SELECT token_id, radio_id, heard_at, play_length, track_id, title, artist, album, label, isrc, upc, audio_id, "
    "score, created_ms FROM plays WHERE heard_at >= ? AND heard_at < ?"
)


def read_plays(c: Catalog, rng: ReportRange, callback_timezone: str) -> Iterator[Play]:
    """The plays of ``rng``, in the order of their timestamps. The index narrows by the text of
    ``heard_at`` (local time: ``ZONE_SLACK`` on each side), then each start is placed exactly."""
    lo, hi = rng.bounds()
    written_in, shown_in = parse_zone(callback_timezone), rng.zone
    args: list[object] = [_local_text(lo - ZONE_SLACK, written_in), _local_text(hi + ZONE_SLACK, written_in)]
    sql = _PLAYS_SQL
    if rng.radio_id is not None:
        sql += " AND radio_id = ?"
        args.append(rng.radio_id)
    cursor = c.conn.execute(sql + " ORDER BY heard_at, id", args)
    for row in cursor:
        start = play_start(str(row[2]), int(row[13]), num(row[3]), written_in)
        if start is None or not lo <= start < hi:
            continue
        yield _play(row, start.astimezone(shown_in))


def _local_text(instant: datetime, zone: tzinfo) -> str:
    return instant.astimezone(zone).strftime(TIMESTAMP_FORMAT)


def play_start(heard_at: str, created_ms: int, play_length: int | None, zone: tzinfo) -> datetime | None:
    """When a play began (UTC), from its callback ``timestamp`` (local time, no zone written).

    The monitor writes a play's event seconds after it ended (``play_length`` after its start),
    or with ``callbacks=before`` seconds after it began (6-8 s measured on a live run with the
    default 12 s gap). So ``timestamp`` read as UTC, minus the start the write time implies, is
    the writer's UTC offset less that lag: when it falls within ``CLEAN_LAG`` seconds of a
    quarter hour inside ±14 h, that offset is the zone the timestamp was written in, whatever
    ``callback_timezone`` says now (a zone changed since, a CLI run without the server's
    environment). Otherwise (an event written long after its play: a backlog, a copied store)
    the timestamp is read in ``zone``. None for a text the monitor did not write.
    """
    try:
        naive = datetime.strptime(heard_at, TIMESTAMP_FORMAT)
    except ValueError:
        return None
    as_utc = naive.replace(tzinfo=UTC).timestamp()
    offset_less_lag = as_utc - (created_ms / 1000 - (play_length or 0))
    offset = round(offset_less_lag / QUARTER_HOUR) * QUARTER_HOUR
    if abs(offset) <= MAX_OFFSET and abs(offset_less_lag - offset) <= CLEAN_LAG:
        return datetime.fromtimestamp(as_utc - offset, UTC)
    return naive.replace(tzinfo=zone).astimezone(UTC)


def num(v: object) -> int | None:
    return None if v is None else int(str(v))


def _play(row: Row, start: datetime) -> Play:
    def text(v: object) -> str:
        return "" if v is None else str(v)

    return Play(
        int(row[0]), int(row[1]), start, num(row[3]), num(row[4]),
        text(row[5]), text(row[6]), text(row[7]), text(row[8]), text(row[9]), text(row[10]), num(row[11]),
        num(row[12]),
    )  # fmt: skip


def summarize(plays: Iterable[Play], rng: ReportRange, c: Catalog | None = None) -> Report:
    """The totals of ``plays`` over ``rng``; with a catalog, tracks carry its current metadata
    and stations their URL and token name."""
    tracks: dict[object, TrackTotal] = {}
    stations: dict[StationKey, StationTotal] = {}
    per_day: dict[date, list[int]] = {d: [0, 0] for d in rng.days()}
    total = seconds = without_length = 0
    for p in plays:
        length = p.play_length or 0
        total += 1
        seconds += length
        without_length += p.play_length is None
        key: object = p.track_id if p.track_id is not None else (p.title, p.artist)
        t = tracks.get(key)
        if t is None:
            t = tracks[key] = TrackTotal(p.track_id, p.title, p.artist, p.album, p.label, p.isrc, p.upc, p.audio_id)
        t.plays += 1
        t.seconds += length
        t.stations.add((p.token_id, p.radio_id))
        s = stations.setdefault((p.token_id, p.radio_id), StationTotal(p.token_id, p.radio_id))
        s.plays += 1
        s.seconds += length
        s.tracks.add(key)
        day = per_day.setdefault(p.start.date(), [0, 0])
        day[0] += 1
        day[1] += length
    if c is not None:
        _describe(c, tracks.values(), stations)
    ordered = sorted(tracks.values(), key=lambda t: (-t.plays, -t.seconds, t.artist.lower(), t.title.lower()))
    return Report(
        range=rng,
        plays=total,
        seconds=seconds,
        plays_without_length=without_length,
        days=[DayTotal(d, n, s) for d, (n, s) in sorted(per_day.items())],
        stations=[stations[k] for k in sorted(stations, key=lambda k: (k[1], k[0]))],
        tracks=ordered,
    )


def _describe(c: Catalog, tracks: Iterable[TrackTotal], stations: dict[StationKey, StationTotal]) -> None:
    """Fill in the catalog's current metadata of the tracks still there, and the stations' URLs."""
    listed = [t for t in tracks if t.track_id is not None]
    known: dict[int, Track] = {}
    for i in range(0, len(listed), 500):  # SQLite's bound on one statement's parameters
        known.update(c.get_tracks(t.track_id for t in listed[i : i + 500] if t.track_id is not None))
    for t in listed:
        track = known.get(t.track_id) if t.track_id is not None else None
        if track is None:
            continue
        m = track.meta
        t.title, t.artist, t.album = m.title or t.title, m.artist or t.artist, m.album or t.album
        t.label = m.label or t.label
        t.isrc, t.upc = m.isrc or "", m.upc or ""
        t.audio_id, t.external = m.audio_id, dict(m.external)
    if stations:
        for token_id, radio_id, url in c.conn.execute("SELECT token_id, radio_id, url FROM streams"):
            s = stations.get((int(token_id), int(radio_id)))
            if s is not None:
                s.url = str(url)
        names = {int(i): str(n) for i, n in c.conn.execute("SELECT id, name FROM tokens")}
        for s in stations.values():
            s.token_name = names.get(s.token_id, "")
