"""The Catalog pages' use cases on a real store: search (title, artist, album, ISRC, lyrics),
keyset browsing, a track's view with where it was heard (plays recorded through the stream
monitor's event sink), the edit form's changes, and the duplicates audit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "reports")
)  # airplay: plays as the monitor records them

from airplay import record_plays

from soundmark.catalog import browse
from soundmark.catalog.writer import LocalDatabase
from soundmark.demo import write_wav
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.stream import fingerprint_source
from soundmark.services.catalog import (
    CatalogQuery,
    DuplicateAudits,
    MetaEdit,
    TrackRef,
    edit_from_form,
    edit_metadata,
    find_tracks,
    replace_upload_slot,
    track_view,
)
from soundmark.services.errors import ServiceError
from soundmark.services.recognition_pool import Extracted
from soundmark.store import Store
from support import PIECE_RATE, Piece

LYRICS = "Under the sodium lamps we hum along\nuntil the resonance carries us home"


def _described(db: Path) -> list[int]:
    """The store's track ids, the first three given an album, an ISRC and lyrics."""
    with Store(db, FingerprintParams()) as store:
        ids = [t.id for t in store.catalog.list_tracks()]
        edit_metadata(store, TrackRef(track_id=ids[0]), MetaEdit(album="Night Drives", isrc="GBAYE2600017"))
        edit_metadata(store, TrackRef(track_id=ids[1]), MetaEdit(artist="Sodium Choir"))
        edit_metadata(store, TrackRef(track_id=ids[2]), MetaEdit(lyrics=LYRICS))
    return ids


def _titles(db: Path, query: CatalogQuery) -> list[str]:
    database = LocalDatabase(db)
    try:
        return [str(t.meta.title) for t in database.read(lambda c: find_tracks(c, query)).tracks]
    finally:
        database.close()


def test_search_by_title_artist_album_isrc_and_lyrics(store_copy: Path, pieces: list[Piece]) -> None:
    ids = _described(store_copy)
    with Store(store_copy, FingerprintParams()) as store:
        title = {i: t.meta.title for i, t in store.catalog.get_tracks(ids).items()}
    find = lambda q, field="all": _titles(store_copy, CatalogQuery(q=q, field=field))  # noqa: E731
    assert find(pieces[3].title, "title")[0] == pieces[3].title
    assert find("Sodium Choir", "artist") == [title[ids[1]]]
    assert find("night drives", "album") == [title[ids[0]]]
    assert find("GB-AYE-26-00017", "isrc") == [title[ids[0]]]  # dashes and case do not matter
    assert find("gbaye2600017") == [title[ids[0]]]  # an ISRC is found from "everything" too
    assert find("resonance carries us", "lyrics") == [title[ids[2]]]
    assert find("resonance carries us") == [title[ids[2]]]
    assert find("Sodium") == [title[ids[1]], title[ids[2]]]  # the artist outranks a word of the lyrics
    assert find("Sodium", "lyrics") == [title[ids[2]]]
    assert find("resona", "lyrics") == [title[ids[2]]]  # the last word also as a prefix
    assert find("resonance", "title") == []
    for hostile in ['"', "NEAR(a b)", "title:x", "* OR -", "\x00", "a" * 500]:
        assert find(hostile) == []  # FTS5 syntax is plain text
    # Pages of a search: every match once, in rank order.
    database = LocalDatabase(store_copy)
    try:
        paged = [
            database.read(lambda c, o=o: find_tracks(c, CatalogQuery(q="piece", offset=o, size=3))) for o in (0, 3)
        ]
    finally:
        database.close()
    assert paged[0].total == paged[1].total == len(pieces)
    assert sorted(str(t.meta.title) for p in paged for t in p.tracks) == sorted(p.title for p in pieces)
    with pytest.raises(ServiceError):
        CatalogQuery.parse({"field": "genre"})
    with pytest.raises(ServiceError):
        CatalogQuery.parse({"after": "-1"})
    assert CatalogQuery.parse({"q": "  a   b ", "offset": "99999999"}) == CatalogQuery(
        q="a b", offset=browse.MAX_RESULTS
    )


@pytest.mark.parametrize("sort", browse.SORTS)
def test_browse_pages_cover_every_track_once_forwards_and_back(store_copy: Path, sort: str) -> None:
    database = LocalDatabase(store_copy)
    try:
        every = database.read(lambda c: browse.browse(c, sort, limit=100)).tracks
        pages, after = [], None
        while True:
            page = database.read(lambda c, after=after: browse.browse(c, sort, after=after, limit=2))
            pages.append([t.id for t in page.tracks])
            assert 1 <= len(page.tracks) <= 2
            if page.after is None:
                break
            after = page.after
        assert [i for p in pages for i in p] == [t.id for t in every]  # the same order, no track twice
        before, back = page.before, [pages[-1]]
        while before is not None:
            page = database.read(lambda c, before=before: browse.browse(c, sort, before=before, limit=2))
            back.insert(0, [t.id for t in page.tracks])
            before = page.before
        assert back == pages
        # A page after a track that is gone starts over.
        assert database.read(lambda c: browse.browse(c, sort, after=999_999, limit=2)).tracks == every[:2]
    finally:
        database.close()
    if sort == "added":
        assert [t.id for t in every] == sorted((t.id for t in every), reverse=True)
    elif sort == "title":
        assert [str(t.meta.title).lower() for t in every] == sorted(str(t.meta.title).lower() for t in every)


def test_a_track_view_says_where_it_was_heard(store_copy: Path) -> None:
    ids = _described(store_copy)
    record_plays(store_copy, ids[:3])  # airplay.PLAYS: track 0 four times on radio 1, once on radio 2
    database = LocalDatabase(store_copy)
    try:
        view = database.read(lambda c: track_view(c, ids[0], with_plays=True))
        anonymous = database.read(lambda c: track_view(c, ids[0], with_plays=False))
        with pytest.raises(ServiceError):
            database.read(lambda c: track_view(c, 999_999, with_plays=True))
    finally:
        database.close()
    assert view.track.meta.isrc == "GBAYE2600017"
    stations = view.stations or []
    assert [(s.radio_id, s.plays, s.seconds) for s in stations] == [(1, 4, 100 + 200 + 200 + 100), (2, 1, 210)]
    assert stations[0].url == "http://radio.example/1.mp3" and stations[0].token_name == "station owner"
    assert stations[0].last_heard.startswith("2026-11-04 03:00")  # the last play, in the +03:00 callback zone
    assert anonymous.stations is None


def test_the_edit_form_changes_only_what_differs(store_copy: Path) -> None:
    with Store(store_copy, FingerprintParams()) as store:
        track = edit_metadata(
            store, TrackRef(track_id=store.catalog.list_tracks()[0].id), MetaEdit(external={"spotify_id": "x" * 22})
        )
    form = {"title": f"  {track.meta.title} ", "artist": "New Artist", "album": "", "lyrics": "line one\r\nline two",
            "ext:spotify_id": "", "new_key": "deezer_id", "new_value": "3135556"}  # fmt: skip
    edit = edit_from_form(track, form)
    assert edit == MetaEdit(
        artist="New Artist", lyrics="line one\nline two", external={"spotify_id": "", "deezer_id": "3135556"}
    )
    for bad in ({"title": "x" * 201}, {"new_key": "bad key!", "new_value": "1"}):
        with pytest.raises(ServiceError):
            edit_from_form(track, bad)


def test_the_duplicates_audit_finds_a_copy_and_nothing_else(store_copy: Path, pieces: list[Piece]) -> None:
    # `add` takes a re-encode of a stored track for a duplicate and skips it; AudD's custom catalog
    # (`upload`) stores what it is given, so the same recording can sit in the catalog twice.
    quiet = store_copy.parent / "quiet-copy.wav"
    write_wav(quiet, (0.5 * pieces[1].samples).astype(np.float32), PIECE_RATE)
    fp, seconds = fingerprint_source(quiet, FingerprintParams(), 3600)
    with Store(store_copy, FingerprintParams()) as store:
        original = next(t.id for t in store.catalog.list_tracks() if t.meta.title == pieces[1].title)
        copy = replace_upload_slot(store, 77, Extracted(seconds, fp.hashes, fp.times, fp.peaks), "upload")
    audits = DuplicateAudits(lambda: Store(store_copy, FingerprintParams()))
    assert audits.start()
    last = audits.wait(120).last
    assert last is not None and not last.error, last
    assert last.tracks == len(pieces) + 1
    assert [set(g.members) for g in last.groups] == [{original, copy}]
    pair = last.groups[0].pairs[0]
    assert pair.kind == "same" and pair.shared_seconds > 0.9 * last.files[original].duration
    # A catalog over the report's limit is refused with a message, not audited.
    small = DuplicateAudits(lambda: Store(store_copy, FingerprintParams()), max_hours=0.01)
    assert small.start()
    refused = small.wait(60).last
    assert refused is not None and "soundmark audit --db" in refused.error and not refused.groups


def test_a_search_matching_too_many_to_rank_lists_the_first_found(
    store_copy: Path, pieces: list[Piece], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browse, "MAX_RANKED", 2)  # ranking scores every match: past the cap it is skipped
    database = LocalDatabase(store_copy)
    try:
        page = database.read(lambda c: browse.search(c, "piece"))
        few = database.read(lambda c: browse.search(c, pieces[0].title, "title"))
    finally:
        database.close()
    assert not page.ranked and page.capped
    assert [t.id for t in page.tracks] == sorted(t.id for t in page.tracks)  # as found, not ranked
    assert few.ranked and not few.capped
