"""Full-text search over titles, artists and lyrics: ranking, query safety, index kept in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from soundmark.catalog.lyrics import fts_query, search_lyrics
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import Catalog

SONGS = [
    TrackMeta(
        title="Bohemian Rhapsody",
        artist="Queen",
        lyrics="Is this the real life? Is this just fantasy? Caught in a landslide",
    ),
    TrackMeta(title="Killer Queen", artist="Queen", lyrics="She keeps her Moët et Chandon in her pretty cabinet"),
    TrackMeta(
        title="Real Love",
        artist="The Beatles",
        lyrics="All my little plans and schemes, lost like some forgotten dreams. It's real love",
    ),
    TrackMeta(title="Café del Mar", artist="Energy 52", lyrics=None),
    TrackMeta(title="Don't Stop Me Now", artist="Queen", lyrics="Tonight I'm gonna have myself a real good time"),
    TrackMeta(title="東京", artist="Ensemble", lyrics="東京 の 夜 ネオン"),
    TrackMeta(title="Near You", artist="Nobody", lyrics="I want to be near you, always"),
]


def _ids(catalog: Catalog, q: str, limit: int = 10) -> list[int]:
    return [t.id for t in search_lyrics(catalog, q, limit)]


def _check_index(catalog: Catalog) -> None:
    """FTS5's own check that the index matches the content table exactly."""
    catalog.conn.execute("INSERT INTO lyrics_fts(lyrics_fts, rank) VALUES ('integrity-check', 1)")


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path)
    with c.transaction():
        for i, meta in enumerate(SONGS):
            assert c.insert_track(meta, 180.0, f"s{i}.flac", f"h{i}", 100) == i + 1
    yield c
    c.close()


def test_matches_across_columns(catalog: Catalog) -> None:
    assert _ids(catalog, "queen fantasy") == [1]  # artist + lyrics
    assert _ids(catalog, "rhapsody landslide queen") == [1]  # title + lyrics + artist
    assert _ids(catalog, "beatles dreams") == [3]
    assert _ids(catalog, "queen beatles") == []  # every term must match
    assert sorted(_ids(catalog, "QUEEN")) == [1, 2, 5]  # case-insensitive


def test_ranking(catalog: Catalog) -> None:
    assert _ids(catalog, "queen")[0] == 2  # in the title beats artist only
    real = _ids(catalog, "real")
    assert sorted(real) == [1, 3, 5]
    assert real[0] == 3  # title (and lyrics) before lyrics only
    assert _ids(catalog, "love real")[0] == 3
    assert len(_ids(catalog, "queen", limit=1)) == 1
    assert _ids(catalog, "queen", limit=0) == []


def test_returns_tracks(catalog: Catalog) -> None:
    [t] = search_lyrics(catalog, "landslide")
    assert t.id == 1 and t.meta.title == "Bohemian Rhapsody" and t.meta.artist == "Queen"
    assert t.duration == 180.0 and t.source == "s0.flac"


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '""',
        '"queen',
        'queen"',
        'que"en',
        "queen*",
        "*",
        "que*",
        "NEAR(queen real)",
        "queen NEAR real",
        "NEAR",
        "-queen",
        "queen -fantasy",
        "queen NOT fantasy",
        "queen OR beatles",
        "AND",
        "title:queen",
        "{title}: queen",
        "^queen",
        "queen + real",
        "(queen",
        "'; DROP TABLE tracks; --",
        "\x00queen",
        "queen\x00real",
        "\ud800queen",
        "queen\x1b[0m",
        "🎵 queen 🎵",
    ],
)
def test_hostile_queries_never_raise(catalog: Catalog, q: str) -> None:
    assert isinstance(search_lyrics(catalog, q), list)
    assert catalog.conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0] == len(SONGS)


def test_operators_are_plain_text(catalog: Catalog) -> None:
    assert _ids(catalog, "que*") == []  # no prefix search
    assert sorted(_ids(catalog, "queen*")) == [1, 2, 5]  # the * is punctuation
    assert sorted(_ids(catalog, "-queen")) == [1, 2, 5]  # not a negation
    assert _ids(catalog, "queen -fantasy") == [1]  # "fantasy" is required, not excluded
    assert _ids(catalog, "queen OR beatles") == []  # OR is a word nobody sings here
    assert _ids(catalog, "queen NOT fantasy") == []
    assert _ids(catalog, "near") == [7]  # NEAR is just the word near
    assert _ids(catalog, "NEAR(you always)") == [7]
    assert _ids(catalog, "title:queen") == []  # no column filters: the phrase "title queen"
    assert _ids(catalog, '"queen') != [] and _ids(catalog, 'killer"') == [2]
    assert _ids(catalog, "don't stop") == [5]
    assert _ids(catalog, "killer\x00queen") == [2]  # control characters separate words


@pytest.mark.parametrize("q", ["", "   ", '"', '""', "*", "- * ^ : ( ) \" ' + ~", "🎵", "🎵 …"])
def test_punctuation_only_is_empty(catalog: Catalog, q: str) -> None:
    assert fts_query(q) is None
    assert search_lyrics(catalog, q) == []


def test_unicode(catalog: Catalog) -> None:
    assert _ids(catalog, "moet chandon") == [2]  # diacritics folded
    assert _ids(catalog, "MOËT") == [2]
    assert _ids(catalog, "cafe") == [4] and _ids(catalog, "CAFÉ") == [4]
    assert _ids(catalog, "東京") == [6]
    assert _ids(catalog, "ネオン 夜") == [6]


def test_fts_query_quotes_terms() -> None:
    assert fts_query('a"b NEAR  c*') == '"a""b" "NEAR" "c*"'
    assert fts_query("x " + " ".join(f"w{i}" for i in range(100))).count('"') == 64  # capped


def test_triggers_keep_index_in_sync(catalog: Catalog) -> None:
    _check_index(catalog)
    with catalog.transaction():
        new_id = catalog.insert_track(
            TrackMeta(title="Yellow Submarine", artist="The Beatles", lyrics="we all live in a yellow submarine"),
            160.0,
            None,
            "h-new",
            10,
        )
    assert _ids(catalog, "submarine") == [new_id]
    _check_index(catalog)

    with catalog.transaction():
        catalog.update_meta(new_id, TrackMeta(title="Octopus's Garden", artist="The Beatles", lyrics="under the sea"))
    assert _ids(catalog, "submarine") == []
    assert _ids(catalog, "octopus garden sea") == [new_id]
    assert sorted(_ids(catalog, "beatles")) == [3, new_id]
    _check_index(catalog)

    with catalog.transaction():
        assert catalog.delete_track(new_id)
    assert _ids(catalog, "octopus") == []
    assert _ids(catalog, "beatles") == [3]
    _check_index(catalog)

    # A rolled-back write leaves the index as it was.
    with pytest.raises(RuntimeError), catalog.transaction():
        catalog.insert_track(TrackMeta(title="Ghost Song"), 1.0, None, "h-ghost", 1)
        raise RuntimeError
    assert _ids(catalog, "ghost") == []
    _check_index(catalog)

    # Updating other columns leaves the index alone; clearing lyrics removes their words.
    catalog.conn.execute("UPDATE tracks SET n_hashes = 5 WHERE id = 1")
    with catalog.transaction():
        catalog.update_meta(1, TrackMeta(title="Bohemian Rhapsody", artist="Queen"))
    assert _ids(catalog, "landslide") == []
    assert _ids(catalog, "rhapsody") == [1]
    _check_index(catalog)


def test_search_from_readonly_catalog(catalog: Catalog, tmp_path: Path) -> None:
    reader = Catalog(tmp_path, readonly=True)
    try:
        assert _ids(reader, "killer queen") == [2]
    finally:
        reader.close()
