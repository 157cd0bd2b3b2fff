"""The catalog's browse and search queries (the web app's Catalog pages), each bounded: a page
of at most ``MAX_PAGE`` rows, found through an index (``catalog/schema_search.py``), never by a
scan of every track.

- browse: keyset pages in one order (``title``, ``artist`` or ``added``, newest first): a page
  starts after (or ends before) a track id, whose sort key is read back here, so a link needs
  only that id;
- search: whole words (else the last one as a prefix, for a half-typed query) in the title,
  artist or lyrics (``lyrics_fts``), the album (``album_fts``), or an exact ISRC; at most
  ``MAX_RESULTS`` matches, best first (ranking stops at ``MAX_RANKED`` matches: it scores every
  one), paged;
- plays: where a track was heard, per station (the airplay log, ``plays``).

On PostgreSQL the same queries use the expressions of ``catalog/schema_postgres.py``'s indexes:
``TEXT_FTS`` / ``ALBUM_FTS`` (GIN, ``to_tsquery`` built by ``lyrics.ts_query``, ranked by
``ts_rank``; see ``catalog/lyrics.py`` for what differs from FTS5) and ``TITLE_KEY`` /
``ARTIST_KEY`` (``lower(coalesce(...))``, sorted in the database's collation: the same order as
SQLite's ``COLLATE NOCASE`` for ASCII titles in a ``C``/``C.UTF-8`` database).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from soundmark.catalog import schema_postgres, schema_search
from soundmark.catalog.lyrics import PG_COLUMN_FTS, PG_RANK_NORMALIZATION, PG_TSQUERY, fts_query, pg_rank, ts_query
from soundmark.catalog.models import Track
from soundmark.catalog.schema_postgres import ALBUM_FTS, TEXT_FTS
from soundmark.catalog.sql import POSTGRESQL, SQLITE, dialect
from soundmark.catalog.sqlite import Catalog

MAX_PAGE = 100  # rows on one page, at most
MAX_RESULTS = 500  # matches of one search listed and paged, at most
MAX_RANKED = 5000  # matches of one search ranked, at most (past it the first found are listed, unranked)
MIN_PREFIX = 3  # characters of a last word tried as a prefix when no word matches whole
MAX_STATIONS = 100  # stations listed under "where it was heard"

Order = tuple[tuple[str, ...], bool]


def _orders(title: str, artist: str) -> dict[str, Order]:
    """The sort keys of the browse orders (the expressions of their indexes, the id last) and
    whether they run backwards (newest first), for one engine's case-insensitive keys."""
    return {"title": ((title, "id"), False), "artist": ((artist, title, "id"), False), "added": (("id",), True)}


# SQLite: COLLATE NOCASE (ASCII letters folded); PostgreSQL: lower(), in the database's collation.
_ORDERS = {
    SQLITE: _orders(schema_search.TITLE_KEY, schema_search.ARTIST_KEY),
    POSTGRESQL: _orders(schema_postgres.TITLE_KEY, schema_postgres.ARTIST_KEY),
}
SORTS = tuple(_ORDERS[SQLITE])
FIELDS = ("all", "title", "artist", "album", "lyrics", "isrc")
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")


@dataclass(frozen=True)
class BrowsePage:
    tracks: list[Track]
    after: int | None  # the id the next page starts after (None: this is the last page)
    before: int | None  # the id the previous page ends before (None: this is the first page)


@dataclass(frozen=True)
class SearchPage:
    tracks: list[Track]
    total: int  # matches listed, at most MAX_RESULTS
    capped: bool  # more matched than are listed
    ranked: bool = True  # False: too many matched to rank them (MAX_RANKED); the first found are listed


@dataclass(frozen=True)
class StationPlays:
    token_id: int
    radio_id: int
    url: str  # the stream's URL ("" once it is no longer monitored)
    token_name: str
    plays: int
    seconds: int  # play time heard (plays reported at their start add none)
    last_heard: str  # 'YYYY-MM-DD HH:MM:SS' in the callback zone, as the airplay log holds it


def _bound(limit: int, cap: int) -> int:
    return max(1, min(int(limit), cap))


def _key_of(catalog: Catalog, keys: tuple[str, ...], track_id: int) -> tuple[object, ...] | None:
    """The sort key of ``track_id`` (None when the track is gone)."""
    row = catalog.conn.execute(f"SELECT {', '.join(keys)} FROM tracks WHERE id = ?", (track_id,)).fetchone()
    return None if row is None else tuple(row)


def _order(keys: tuple[str, ...], descending: bool) -> str:
    return ", ".join(f"{k} DESC" if descending else k for k in keys)


def browse(
    catalog: Catalog, sort: str = "title", *, after: int | None = None, before: int | None = None, limit: int = 25
) -> BrowsePage:
    """One page of every track in ``sort`` order: the first, or the one after (before) a track.
    A track that is gone (removed since the link was made) starts over from the first page."""
    keys, newest_first = _ORDERS[dialect(catalog.conn)][sort]
    limit = _bound(limit, MAX_PAGE)
    order = _order(keys, newest_first)
    backwards = before is not None and after is None
    anchor = before if backwards else after
    key = _key_of(catalog, keys, anchor) if anchor is not None else None
    if key is None:
        return _page(catalog, _ids(catalog, "", (), order, limit), limit, started=False)
    # Forwards in an ascending order, the next rows are greater; newest first, smaller.
    greater = backwards == newest_first
    op = ">" if greater else "<"
    # The first key's bound alone lets SQLite seek in the index (a row-value bound alone scans it;
    # PostgreSQL seeks on either).
    where = f"WHERE {keys[0]} {op}= ? AND ({', '.join(keys)}) {op} ({', '.join('?' * len(keys))})"
    key = (key[0], *key)
    if not backwards:
        return _page(catalog, _ids(catalog, where, key, order, limit), limit, started=True)
    ids = _ids(catalog, where, key, _order(keys, not newest_first), limit)
    if not ids:  # nothing before it: the first page
        return _page(catalog, _ids(catalog, "", (), order, limit), limit, started=False)
    more = len(ids) > limit
    ids = ids[:limit][::-1]
    return BrowsePage(_tracks(catalog, ids), ids[-1], ids[0] if more else None)


def _ids(catalog: Catalog, where: str, args: tuple[object, ...], order: str, limit: int) -> list[int]:
    """Up to ``limit + 1`` ids (one more than a page: whether another page follows)."""
    sql = f"SELECT id FROM tracks {where} ORDER BY {order} LIMIT ?"
    return [int(r[0]) for r in catalog.conn.execute(sql, (*args, limit + 1))]


def _page(catalog: Catalog, ids: list[int], limit: int, *, started: bool) -> BrowsePage:
    """A page read forwards from ``ids`` (a page and maybe one more); ``started``: not the first."""
    more = len(ids) > limit
    ids = ids[:limit]
    return BrowsePage(_tracks(catalog, ids), ids[-1] if more else None, ids[0] if started and ids else None)


def _tracks(catalog: Catalog, ids: list[int]) -> list[Track]:
    found = catalog.get_tracks(ids)
    return [found[i] for i in ids if i in found]


def normal_isrc(text: str) -> str | None:
    """``text`` as an ISRC (``CC-XXX-YY-NNNNN`` with or without the dashes, any case), else None."""
    code = re.sub(r"[\s-]", "", text).upper()
    return code if _ISRC.match(code) else None


def _match(q: str, column: str | None, *, prefix: bool) -> str | None:
    """An FTS5 query for the words of ``q`` (``prefix``: the last also as a prefix), in
    ``column`` or in all."""
    terms = fts_query(q)
    if terms is None:
        return None
    query = terms + "*" if prefix else terms  # the last quoted term as a prefix: "tonig" finds "tonight"
    return f"{{{column}}} : ({query})" if column else query


def _ranked(catalog: Catalog, select: str, rank: str, args: tuple[object, ...]) -> tuple[list[int], bool]:
    """Up to ``MAX_RESULTS`` + 1 matches of ``select`` (ids, given ``args``), best first by
    ``rank``, and whether they are ranked: matches past ``MAX_RANKED`` are not ranked (ranking
    scores every match), the first found are taken."""
    probe = [int(r[0]) for r in catalog.conn.execute(f"{select} LIMIT ?", (*args, MAX_RANKED + 1))]
    if len(probe) > MAX_RANKED:
        return sorted(probe)[: MAX_RESULTS + 1], False
    rows = catalog.conn.execute(f"{select} ORDER BY {rank} LIMIT ?", (*args, MAX_RESULTS + 1))
    return [int(r[0]) for r in rows], True


def _text_hits(catalog: Catalog, q: str, column: str | None, *, prefix: bool) -> tuple[list[int], bool] | None:
    """The title/artist/lyrics matches of ``q`` (in ``column``, or in any), None without a word."""
    if dialect(catalog.conn) == POSTGRESQL:
        query = ts_query(q, prefix=prefix)
        if query is None:
            return None
        where = f"{TEXT_FTS} @@ q" + (f" AND {PG_COLUMN_FTS[column]} @@ q" if column else "")
        select = f"SELECT id FROM tracks, {PG_TSQUERY} AS q WHERE {where}"
        return _ranked(catalog, select, f"{pg_rank(column)} DESC, id", (query,))
    match = _match(q, column, prefix=prefix)
    if match is None:
        return None
    select = "SELECT rowid FROM lyrics_fts WHERE lyrics_fts MATCH ?"
    return _ranked(catalog, select, "bm25(lyrics_fts, 10.0, 5.0, 1.0), rowid", (match,))


def _album_hits(catalog: Catalog, q: str, *, prefix: bool) -> tuple[list[int], bool] | None:
    """The album matches of ``q``, None without a word."""
    if dialect(catalog.conn) == POSTGRESQL:
        query = ts_query(q, prefix=prefix)
        if query is None:
            return None
        select = f"SELECT id FROM tracks, {PG_TSQUERY} AS q WHERE {ALBUM_FTS} @@ q"
        return _ranked(catalog, select, f"ts_rank({ALBUM_FTS}, q, {PG_RANK_NORMALIZATION}) DESC, id", (query,))
    match = _match(q, None, prefix=prefix)
    if match is None:
        return None
    return _ranked(catalog, "SELECT rowid FROM album_fts WHERE album_fts MATCH ?", "rank, rowid", (match,))


def search(catalog: Catalog, q: str, field: str = "all", *, offset: int = 0, limit: int = 25) -> SearchPage:
    """Tracks matching ``q`` in ``field`` (``FIELDS``), best first: an exact ISRC, then the
    full-text matches ranked (bm25, or ts_rank: title over artist over lyrics), then album matches. Words
    match whole; when nothing does, a last word of ``MIN_PREFIX`` characters or more is tried
    as a prefix (a half-typed word)."""
    if field not in FIELDS:
        raise ValueError(f"unknown search field {field!r}")
    limit, offset = _bound(limit, MAX_PAGE), max(0, int(offset))
    ids: list[int] = []
    if field in ("all", "isrc"):
        code = normal_isrc(q)
        raw = q.strip()
        if not raw.isprintable():  # control characters, lone surrogates: no stored code has them
            raw = code or ""
        if code or (field == "isrc" and raw):
            rows = catalog.conn.execute(
                "SELECT id FROM tracks WHERE isrc IN (?, ?) ORDER BY id LIMIT ?", (code or raw, raw, MAX_RESULTS + 1)
            )
            ids += [int(r[0]) for r in rows]
    ranked = True
    words = q.split()
    for prefix in (False, True):
        if prefix and (not words or len(words[-1]) < MIN_PREFIX):
            break
        found: list[int] = []
        searches = []
        if field in ("all", "title", "artist", "lyrics"):
            searches.append(_text_hits(catalog, q, None if field == "all" else field, prefix=prefix))
        if field in ("all", "album"):
            searches.append(_album_hits(catalog, q, prefix=prefix))
        for hits_ranked in searches:
            if hits_ranked is not None:
                found, ranked = found + hits_ranked[0], ranked and hits_ranked[1]
        if found:
            ids += found
            break
    unique = list(dict.fromkeys(ids))
    capped = len(unique) > MAX_RESULTS or not ranked
    unique = unique[:MAX_RESULTS]
    return SearchPage(_tracks(catalog, unique[offset : offset + limit]), len(unique), capped, ranked)


def station_plays(catalog: Catalog, track_id: int) -> list[StationPlays]:
    """Where ``track_id`` was heard: its plays per station, most played first."""
    rows = catalog.conn.execute(
        """
        SELECT p.token_id, p.radio_id, COUNT(*) AS n, COALESCE(SUM(p.play_length), 0) AS seconds,
               MAX(p.heard_at) AS last, COALESCE(s.url, '') AS url, COALESCE(t.name, '') AS name
        FROM plays p
        LEFT JOIN streams s ON s.token_id = p.token_id AND s.radio_id = p.radio_id
        LEFT JOIN tokens t ON t.id = p.token_id
        WHERE p.track_id = ?
        GROUP BY p.token_id, p.radio_id, s.url, t.name
        ORDER BY n DESC, last DESC
        LIMIT ?
        """,
        (track_id, MAX_STATIONS),
    ).fetchall()
    return [
        StationPlays(int(r["token_id"]), int(r["radio_id"]), str(r["url"]), str(r["name"]), int(r["n"]),
                     int(r["seconds"]), str(r["last"]))
        for r in rows
    ]  # fmt: skip
