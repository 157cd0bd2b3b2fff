"""Catalog search and browse give the same answers on SQLite (FTS5, COLLATE NOCASE) and on
PostgreSQL (GIN over to_tsvector, lower()): one catalog written to both, every query run on both
and compared, plus the PostgreSQL side's own checks (hostile text, prefixes, column filters).

The catalog avoids what the two engines tokenize differently on purpose (words PostgreSQL's
parser keeps whole such as ``AC/DC``); those differences, and the diacritics both fold, are
checked explicitly at the end, so a change to either side shows up here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soundmark.catalog import browse
from soundmark.catalog.lyrics import search_lyrics, ts_query
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sql import POSTGRESQL, SQLITE
from soundmark.catalog.sqlite import Catalog
from soundmark.store import use_catalog_url

SONGS = [
    TrackMeta(title="Bohemian Rhapsody", artist="Queen", album="A Night at the Opera",
              lyrics="Is this the real life? Is this just fantasy? Caught in a landslide"),
    TrackMeta(title="Killer Queen", artist="Queen", album="Sheer Heart Attack",
              lyrics="She keeps her champagne in her pretty cabinet"),
    TrackMeta(title="Real Love", artist="The Beatles", album="Anthology 2",
              lyrics="All my little plans and schemes, lost like some forgotten dreams. It's real love"),
    TrackMeta(title="Tonight Tonight", artist="Smashing Pumpkins", album="Mellon Collie",
              lyrics="Time is never time at all"),
    TrackMeta(title="Don't Stop Me Now", artist="Queen", album="Jazz",
              lyrics="Tonight I'm gonna have myself a real good time"),
    TrackMeta(title="東京", artist="Ensemble", album="夜", lyrics="東京 の 夜 ネオン"),
    TrackMeta(title="Near You", artist="Nobody", album=None, lyrics="I want to be near you, always"),
    TrackMeta(title="rock-n-roll", artist="the band", album="Night Moves", lyrics=None, isrc="USRC17607839"),
    TrackMeta(title=None, artist=None, album=None, lyrics="untitled words only"),
    TrackMeta(title="apple", artist="Zed", album="Opera Night"),
    TrackMeta(title="Apple", artist="zed", album="Fruit"),
    TrackMeta(title="banana split", artist="Alpha", album="Fruit"),
]  # fmt: skip

QUERIES = [
    "queen", "QUEEN", "real", "love real", "queen fantasy", "queen beatles", "tonight", "tonig", "time",
    "night", "opera", "fruit", "東京", "ネオン 夜", "near", "NEAR(you always)", "don't stop", "rock-n-roll",
    "rock", "roll", "words", "apple", "app", "ap", "banana", "bana split", "-queen", "queen*", "queen OR beatles",
    "title:queen", "'; DROP TABLE tracks; --", "killer\x00queen", "\ud800queen", "🎵 queen 🎵", '"queen', "",
    "   ", "*", "USRC17607839", "us-rc1-76-07839", "it's", "a\\b", "pumpkins smash",
]  # fmt: skip


def _fill(catalog: Catalog) -> None:
    with catalog.transaction():
        for i, meta in enumerate(SONGS):
            catalog.insert_track(meta, 180.0 + i, f"s{i}.flac", f"h{i}", 100, track_id=i + 1)
        conn = catalog.conn
        for name in ("station-a", "station-b"):
            conn.execute(
                "INSERT INTO tokens(name, token_hash, prefix, scopes, limit_per_month, created_at)"
                " VALUES (?, ?, ?, 'streams', NULL, 0)",
                (name, f"hash-{name}", name[:6]),
            )
        conn.execute(
            "INSERT INTO streams(token_id, radio_id, url, category, created_at, updated_at)"
            " VALUES (1, 7, 'http://radio.example/a', 'c', 0, 0)"
        )
        plays = [(1, 7, "2026-01-01 10:00:00", 180, 2), (1, 7, "2026-01-02 10:00:00", None, 2),
                 (2, 3, "2026-01-03 10:00:00", 200, 2), (1, 7, "2026-01-01 11:00:00", 60, 3)]  # fmt: skip
        for event_id, (token_id, radio_id, heard_at, length, track_id) in enumerate(plays, 1):
            conn.execute(
                "INSERT INTO plays(event_id, token_id, radio_id, created_ms, heard_at, play_length, track_id, title)"
                " VALUES (?, ?, ?, 0, ?, ?, ?, 'x')",
                (event_id, token_id, radio_id, heard_at, length, track_id),
            )


@pytest.fixture()
def catalogs(tmp_path: Path, pg_catalog_url: str) -> Iterator[dict[str, Catalog]]:
    """The same catalog on SQLite and on PostgreSQL (a schema of this test's own)."""
    use_catalog_url(tmp_path / "pg", pg_catalog_url, create=True)
    (tmp_path / "lite").mkdir()
    opened = {SQLITE: Catalog(tmp_path / "lite"), POSTGRESQL: Catalog(tmp_path / "pg")}
    try:
        assert opened[POSTGRESQL].dialect == POSTGRESQL and opened[SQLITE].dialect == SQLITE
        for c in opened.values():
            _fill(c)
        yield opened
    finally:
        for c in opened.values():
            c.close()


def _both(catalogs: dict[str, Catalog], fn):  # type: ignore[no-untyped-def]
    return fn(catalogs[SQLITE]), fn(catalogs[POSTGRESQL])


def _page_ids(page: browse.SearchPage) -> tuple[list[int], int, bool, bool]:
    return [t.id for t in page.tracks], page.total, page.capped, page.ranked


@pytest.mark.parametrize("field", browse.FIELDS)
def test_search_is_the_same_on_both(catalogs: dict[str, Catalog], field: str) -> None:
    for q in QUERIES:
        lite, pg = _both(catalogs, lambda c, q=q: _page_ids(browse.search(c, q, field, limit=100)))
        assert lite == pg, (q, field)


def test_search_finds_what_it_should(catalogs: dict[str, Catalog]) -> None:
    """Not only equal: right (so both cannot be equally wrong)."""
    pg = catalogs[POSTGRESQL]

    def ids(q: str, field: str = "all") -> list[int]:
        return [t.id for t in browse.search(pg, q, field, limit=100).tracks]

    assert ids("queen")[0] == 2  # in the title (and artist) before in the artist only
    assert sorted(ids("queen")) == [1, 2, 5]
    assert ids("real")[0] == 3 and sorted(ids("real")) == [1, 3, 5]
    assert ids("tonig") == [4, 5]  # no whole word: the last as a prefix, title before lyrics
    assert ids("ap") == []  # too short to be a prefix
    assert ids("queen", "title") == [2] and sorted(ids("queen", "artist")) == [1, 2, 5]
    assert ids("night") == [8, 10, 1]  # albums only: the shorter album first, then by id
    assert ids("night", "title") == [] and ids("opera", "album") == [10, 1]
    assert ids("us-rc1-76-07839") == [8] and ids("USRC17607839", "isrc") == [8]
    assert ids("fruit") == [11, 12] and ids("apple") == [10, 11]
    assert ids("rock-n-roll") == [8] and ids("roll") == [8]
    assert ids("don't stop") == [5] and ids("killer\x00queen") == [2]
    assert ids("queen OR beatles") == [] and ids("title:queen") == []


def test_search_lyrics_is_the_same_on_both(catalogs: dict[str, Catalog]) -> None:
    for q in QUERIES:
        for limit in (1, 3, 10):
            lite, pg = _both(catalogs, lambda c, q=q, n=limit: [t.id for t in search_lyrics(c, q, n)])
            assert lite == pg, (q, limit)
    assert [t.id for t in search_lyrics(catalogs[POSTGRESQL], "queen")] == [2, 1, 5]
    assert search_lyrics(catalogs[POSTGRESQL], "queen", 0) == []


@pytest.mark.parametrize("sort", browse.SORTS)
def test_browse_pages_are_the_same_on_both(catalogs: dict[str, Catalog], sort: str) -> None:
    def walk(c: Catalog) -> tuple[list[list[int]], list[list[int]]]:
        forwards, page = [], browse.browse(c, sort, limit=5)
        forwards.append([t.id for t in page.tracks])
        while page.after is not None:
            page = browse.browse(c, sort, after=page.after, limit=5)
            forwards.append([t.id for t in page.tracks])
        backwards = []
        while page.before is not None:
            page = browse.browse(c, sort, before=page.before, limit=5)
            backwards.append([t.id for t in page.tracks])
        return forwards, backwards

    lite, pg = _both(catalogs, walk)
    assert lite == pg
    forwards, backwards = pg
    assert sorted(i for p in forwards for i in p) == list(range(1, len(SONGS) + 1))
    assert backwards == forwards[-2::-1]
    if sort == "title":  # "" (no title) first, then case-insensitive, the id breaking ties
        assert forwards[0][:4] == [9, 10, 11, 12]
    if sort == "artist":
        assert forwards[0][:2] == [9, 12]  # no artist, then Alpha


def test_a_gone_anchor_starts_over(catalogs: dict[str, Catalog]) -> None:
    lite, pg = _both(catalogs, lambda c: [t.id for t in browse.browse(c, "artist", after=999, limit=3).tracks])
    assert lite == pg and len(pg) == 3


def test_station_plays_are_the_same_on_both(catalogs: dict[str, Catalog]) -> None:
    lite, pg = _both(catalogs, lambda c: browse.station_plays(c, 2))
    assert lite == pg
    assert [(s.token_id, s.radio_id, s.plays, s.seconds, s.url, s.token_name) for s in pg] == [
        (1, 7, 2, 180, "http://radio.example/a", "station-a"),
        (2, 3, 1, 200, "", "station-b"),
    ]
    assert pg[0].last_heard == "2026-01-02 10:00:00"
    assert browse.station_plays(catalogs[POSTGRESQL], 999) == []


@pytest.mark.parametrize(
    ("q", "prefix", "expected"),
    [
        ("queen", False, "'queen'"),
        ("a'b c\\d", True, "'a''b' & 'c\\\\d':*"),
        ("x & y | !z", False, "'x' & 'y' & '!z'"),  # operator-only terms are dropped, the rest quoted
        ("(a) <-> b:*", False, "'(a)' & 'b:*'"),
        ("🎵 … *", False, None),
        ("w" * 3000, False, None),  # longer than any word PostgreSQL indexes
    ],
)
def test_ts_query_quotes_terms(q: str, prefix: bool, expected: str | None) -> None:
    assert ts_query(q, prefix=prefix) == expected


def test_hostile_text_is_plain_words_on_postgresql(catalogs: dict[str, Catalog]) -> None:
    pg = catalogs[POSTGRESQL]
    for q in ["'", "''", "\\", "\\'", "queen'", "a' | 'b", "queen:*", "!queen", "queen & !fantasy", "<->", "(queen",
              "queen)", "'; DROP TABLE tracks; --", "w" * 3000 + " queen"]:  # fmt: skip
        assert isinstance(search_lyrics(pg, q), list)
        assert isinstance(browse.search(pg, q).tracks, list)
    assert [t.id for t in search_lyrics(pg, "queen & !fantasy")] == [1]  # "fantasy" required, "&" is no word
    assert pg.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == len(SONGS)


def test_known_tokenizer_differences(catalogs: dict[str, Catalog]) -> None:
    """What the two indexes tokenize differently (see catalog/lyrics.py): pinned, not hidden; and
    diacritics, which both fold (PostgreSQL through unaccent, its migration 3)."""
    extra = TrackMeta(title="Café del Mar", artist="AC/DC", lyrics="pi is 3.14")
    for c in catalogs.values():
        with c.transaction():
            c.insert_track(extra, 1.0, None, "h-extra", 1, track_id=100)
    try:
        lite, pg = _both(catalogs, lambda c: {q: [t.id for t in search_lyrics(c, q)] for q in
                                              ("café", "CAFÉ", "cafe", "ac/dc", "ac dc", "3.14", "3 14")})  # fmt: skip
        assert lite == {q: [100] for q in lite}  # FTS5 folds diacritics and splits at every punctuation
        assert pg == {
            "café": [100], "CAFÉ": [100], "cafe": [100], "ac/dc": [100], "ac dc": [], "3.14": [100], "3 14": [],
        }  # fmt: skip
    finally:
        for c in catalogs.values():
            with c.transaction():
                c.delete_track(100)
