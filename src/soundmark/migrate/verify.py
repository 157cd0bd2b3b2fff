"""Check a migrated store against its source: same tracks, same postings, same lookups, same rows.

There is no audio to recognise (a store keeps fingerprints only), so the check compares what
recognition reads: the tracks' catalog rows (metadata, duration, content hash, hash count, when
added), the postings the target's index holds against the hash counts, and for the hashes of a few
sample tracks the whole answer of ``FingerprintIndex.lookup`` on both sides (every track and time
that shares them, not only the sample track's own), plus the row counts of the copied tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundmark.catalog.sql import Connection
from soundmark.index.base import FingerprintIndex, Hits
from soundmark.migrate.source import SourceStore
from soundmark.migrate.tables import row_counts

SAMPLE_TRACKS = 8
SAMPLE_HASHES = 64  # hashes looked up per sample track
NO_CAP = 2**31 - 1  # every posting of a hash, however common
PAGE_TRACKS = 2_000
_ROW = (
    "id, title, artist, album, release_date, label, isrc, upc, lyrics, audio_id, duration, source, content_hash,"
    " n_hashes, added_at"
)
_SHOWN_DIFFERENCES = 20


@dataclass(frozen=True)
class Verification:
    """Source and target side by side; ``ok`` when they agree everywhere."""

    tracks: tuple[int, int]
    postings: tuple[int, int]  # the source's hash counts, the target index's live postings
    differing_tracks: tuple[int, ...]  # ids whose rows differ (the first few)
    sample_tracks: tuple[int, ...]
    sample_hashes: int
    lookups_equal: bool
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.tracks[0] == self.tracks[1]
            and self.postings[0] == self.postings[1]
            and not self.differing_tracks
            and self.lookups_equal
            and all(s == t for s, t in self.tables.values())
        )


def _track_rows(conn: Connection, after: int, limit: int) -> list[tuple[Any, ...]]:
    return [
        tuple(r) for r in conn.execute(f"SELECT {_ROW} FROM tracks WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
    ]


def differing_tracks(source: Connection, target: Connection) -> list[int]:
    """Ids whose catalog rows differ or exist on one side only (compared a page of ids at a time)."""
    out: list[int] = []
    after = 0
    while len(out) < _SHOWN_DIFFERENCES:
        src = _track_rows(source, after, PAGE_TRACKS)
        if not src:
            break
        hi = int(src[-1][0])
        tgt = {
            int(r[0]): tuple(r)
            for r in target.execute(f"SELECT {_ROW} FROM tracks WHERE id > ? AND id <= ?", (after, hi))
        }
        out += [int(r[0]) for r in src if tgt.pop(int(r[0]), None) != r]
        out += sorted(tgt)  # in the target only
        after = hi
    return sorted(out)[:_SHOWN_DIFFERENCES]


def _count(conn: Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _answer(index: FingerprintIndex, hashes: np.ndarray) -> np.ndarray:
    """A lookup's postings as sorted (hash, track, time) rows, comparable across backends."""
    hits: Hits = index.lookup(hashes, NO_CAP)
    rows = np.stack([hashes[hits.hash_pos].astype(np.int64), hits.track_ids, hits.times], axis=1)
    return rows[np.lexsort(rows.T[::-1])] if len(rows) else rows.reshape(0, 3)


def sample_hashes(source: SourceStore, ids: list[int], max_postings: int) -> tuple[list[int], np.ndarray]:
    """Up to ``SAMPLE_TRACKS`` tracks spread over ``ids`` and ``SAMPLE_HASHES`` of each's hashes."""
    if not ids:
        return [], np.zeros(0, np.uint32)
    picks = sorted({ids[int(i)] for i in np.linspace(0, len(ids) - 1, min(SAMPLE_TRACKS, len(ids)))})
    parts = []
    for tp in source.reader.read_tracks(picks, max_postings):
        if len(tp.hashes):
            at = np.linspace(0, len(tp.hashes) - 1, min(SAMPLE_HASHES, len(tp.hashes))).astype(np.int64)
            parts.append(np.asarray(tp.hashes, dtype=np.uint32)[at])
    hashes = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint32)
    return picks, hashes


def verify(
    source: SourceStore, target_conn: Connection, target_index: FingerprintIndex, max_postings: int
) -> Verification:
    """Compare the source store with the migrated catalog and index (refreshed by the caller)."""
    src = source.catalog.conn
    tracks = (_count(src, "SELECT COUNT(*) FROM tracks"), _count(target_conn, "SELECT COUNT(*) FROM tracks"))
    postings = (_count(src, "SELECT COALESCE(SUM(n_hashes), 0) FROM tracks"), target_index.postings())
    picks, hashes = sample_hashes(source, source.track_ids(), max_postings)
    same = bool(np.array_equal(_answer(source.index, hashes), _answer(target_index, hashes)))
    counted = {"track_external": "track_external", "source_files": "source_files"}
    tables = {
        name: (_count(src, f"SELECT COUNT(*) FROM {t}"), _count(target_conn, f"SELECT COUNT(*) FROM {t}"))
        for name, t in counted.items()
    }
    s_rows, t_rows = row_counts(src), row_counts(target_conn)
    tables.update({name: (s_rows[name], t_rows[name]) for name in s_rows})
    return Verification(
        tracks=tracks,
        postings=postings,
        differing_tracks=tuple(differing_tracks(src, target_conn)),
        sample_tracks=tuple(picks),
        sample_hashes=len(hashes),
        lookups_equal=same,
        tables=tables,
    )
