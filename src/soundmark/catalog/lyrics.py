"""Full-text search over titles, artists and lyrics (the FTS5 index ``lyrics_fts``)."""

from __future__ import annotations

import unicodedata

from soundmark.catalog.models import Track
from soundmark.catalog.sqlite import Catalog

MAX_TERMS = 32  # longer queries are cut: more terms only narrow an AND query further
MAX_LIMIT = 100

# bm25 column weights: a word of the title says more than one of the artist, which says more
# than one among a song's lyrics.
_WEIGHTS = (10.0, 5.0, 1.0)  # title, artist, lyrics


def fts_query(q: str) -> str | None:
    """Turn user text into a safe FTS5 query: every whitespace-separated term becomes a quoted
    FTS5 string (so ``"``, ``*``, ``-``, ``^``, ``:``, ``NEAR``, ``AND``/``OR``/``NOT`` are just
    text), terms without a letter or digit are dropped, and the rest are ANDed. None when no
    term is left."""
    # Control characters (NUL would cut SQLite's copy of the string short) and lone surrogates
    # (not encodable as UTF-8) become separators.
    q = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in q)
    terms = [t for t in q.split() if any(c.isalnum() for c in t)][:MAX_TERMS]
    if not terms:
        return None
    return " ".join('"' + t.replace('"', '""') + '"' for t in terms)


def search_lyrics(catalog: Catalog, q: str, limit: int = 10) -> list[Track]:
    """Tracks whose title, artist and lyrics together hold every term of ``q``, best first.

    Terms match whole words (case- and accent-insensitively), in any of the three columns;
    ranking is bm25 with the title weighted above the artist above the lyrics.
    """
    match = fts_query(q)
    limit = min(int(limit), MAX_LIMIT)
    if match is None or limit <= 0:
        return []
    rows = catalog.conn.execute(
        "SELECT rowid FROM lyrics_fts WHERE lyrics_fts MATCH ? ORDER BY bm25(lyrics_fts, ?, ?, ?), rowid LIMIT ?",
        (match, *_WEIGHTS, limit),
    ).fetchall()
    ids = [int(r[0]) for r in rows]
    tracks = catalog.get_tracks(ids)
    return [tracks[i] for i in ids if i in tracks]
