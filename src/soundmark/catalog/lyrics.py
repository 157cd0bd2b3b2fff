"""Full-text search over titles, artists and lyrics, on either catalog engine.

SQLite: the FTS5 index ``lyrics_fts`` (``unicode61 remove_diacritics 2``), ranked by bm25 with
per-column weights. PostgreSQL: the GIN expression index ``schema_postgres.TEXT_FTS`` (the
configuration ``schema_postgres.TS_CONFIG``: ``simple`` with diacritics folded, over title,
artist and lyrics), the match written as exactly that
expression so the planner uses the index, ranked by ``ts_rank`` over a vector of the same words
weighted per column (A title, B artist, D lyrics) with the same proportions as bm25's weights.

The user's words become a query the same way on both: every whitespace-separated term is quoted
(so no character of it is an operator), terms without a letter or digit are dropped, the rest are
ANDed, and a half-typed last word can be asked as a prefix; both fold case and diacritics
(``cafe`` and ``CAFÉ`` find ``Café``). Differences that remain, because the indexes tokenize
differently: PostgreSQL's parser keeps some punctuated words whole (``AC/DC``, ``3.14``,
``a@b.com`` are one word there, two or three in FTS5); the ranking formulas differ, so only clear
differences in rank (title over artist over lyrics, shorter over longer) agree.
"""

from __future__ import annotations

import unicodedata

from soundmark.catalog.models import Track
from soundmark.catalog.schema_postgres import TEXT_FTS, TS_CONFIG
from soundmark.catalog.sql import POSTGRESQL, dialect
from soundmark.catalog.sqlite import Catalog

MAX_TERMS = 32  # longer queries are cut: more terms only narrow an AND query further
MAX_LIMIT = 100
_MAX_TERM_CHARS = 2047  # PostgreSQL indexes no longer word (and says so in a NOTICE): drop it

# bm25 column weights: a word of the title says more than one of the artist, which says more
# than one among a song's lyrics.
_WEIGHTS = (10.0, 5.0, 1.0)  # title, artist, lyrics

# PostgreSQL: the columns' words weighted A (title), B (artist), D (lyrics); positions run on
# across the columns exactly as in TEXT_FTS (which joins the texts with a space).
PG_WEIGHTED = (
    f"setweight(to_tsvector('{TS_CONFIG}', coalesce(title, '')), 'A')"
    f" || setweight(to_tsvector('{TS_CONFIG}', coalesce(artist, '')), 'B')"
    f" || to_tsvector('{TS_CONFIG}', coalesce(lyrics, ''))"
)
# ts_rank's weights are given as {D, C, B, A}; a column filter counts only that column's words.
_PG_RANK_WEIGHTS = {
    None: f"{{{_WEIGHTS[2] / 10}, 0, {_WEIGHTS[1] / 10}, {_WEIGHTS[0] / 10}}}",
    "title": "{0, 0, 0, 1}",
    "artist": "{0, 0, 1, 0}",
    "lyrics": "{1, 0, 0, 0}",
}
PG_COLUMN_FTS = {c: f"to_tsvector('{TS_CONFIG}', coalesce({c}, ''))" for c in ("title", "artist", "lyrics")}
PG_TSQUERY = f"to_tsquery('{TS_CONFIG}', ?)"  # a user's query (``ts_query``), folded as the index is
# ts_rank normalization 1: divided by 1 + log(length), so among equal hits the shorter track
# ranks first, as bm25's length normalisation has it.
PG_RANK_NORMALIZATION = 1


def _terms(q: str) -> list[str]:
    # Control characters (NUL would cut SQLite's copy of the string short, PostgreSQL refuses it)
    # and lone surrogates (not encodable as UTF-8) become separators.
    q = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in q)
    return [t for t in q.split() if any(c.isalnum() for c in t)][:MAX_TERMS]


def fts_query(q: str) -> str | None:
    """Turn user text into a safe FTS5 query: every whitespace-separated term becomes a quoted
    FTS5 string (so ``"``, ``*``, ``-``, ``^``, ``:``, ``NEAR``, ``AND``/``OR``/``NOT`` are just
    text), terms without a letter or digit are dropped, and the rest are ANDed. None when no
    term is left."""
    terms = _terms(q)
    if not terms:
        return None
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def ts_query(q: str, *, prefix: bool = False) -> str | None:
    """The same terms as ``fts_query`` as a PostgreSQL ``to_tsquery`` text (``PG_TSQUERY``): each
    term a quoted operand (``'`` and ``\\`` escaped, so ``&``, ``|``, ``!``, ``<->``, ``:*`` and
    parentheses in it are just text; PostgreSQL's parser splits it into the words the index holds,
    a phrase when there are several), ANDed; ``prefix``: the last term also matches as a prefix
    (FTS5's ``"term"*``). None when no term is left."""
    terms = [t for t in _terms(q) if len(t) <= _MAX_TERM_CHARS]
    if not terms:
        return None
    quoted = ["'" + t.replace("\\", "\\\\").replace("'", "''") + "'" for t in terms]
    if prefix:
        quoted[-1] += ":*"
    return " & ".join(quoted)


def pg_rank(column: str | None) -> str:
    """The ``ts_rank`` of a track for the query ``q`` (a ``to_tsquery`` named ``q`` in the
    statement), weighted like bm25's columns; ``column``: only that column's words count."""
    return f"ts_rank('{_PG_RANK_WEIGHTS[column]}', {PG_WEIGHTED}, q, {PG_RANK_NORMALIZATION})"


def search_lyrics(catalog: Catalog, q: str, limit: int = 10) -> list[Track]:
    """Tracks whose title, artist and lyrics together hold every term of ``q``, best first.

    Terms match whole words (case- and accent-insensitively), in any of the
    three columns; the title ranks above the artist above the lyrics.
    """
    limit = min(int(limit), MAX_LIMIT)
    if limit <= 0:
        return []
    if dialect(catalog.conn) == POSTGRESQL:
        query = ts_query(q)
        if query is None:
            return []
        rows = catalog.conn.execute(
            f"SELECT id FROM tracks, {PG_TSQUERY} AS q WHERE {TEXT_FTS} @@ q ORDER BY {pg_rank(None)} DESC, id LIMIT ?",
            (query, limit),
        ).fetchall()
    else:
        match = fts_query(q)
        if match is None:
            return []
        rows = catalog.conn.execute(
            "SELECT rowid FROM lyrics_fts WHERE lyrics_fts MATCH ? ORDER BY bm25(lyrics_fts, ?, ?, ?), rowid LIMIT ?",
            (match, *_WEIGHTS, limit),
        ).fetchall()
    ids = [int(r[0]) for r in rows]
    tracks = catalog.get_tracks(ids)
    return [tracks[i] for i in ids if i in tracks]
