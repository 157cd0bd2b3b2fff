"""Copy the tracks of an embedded store into a shared one, keeping their ids.

Track ids are kept because everything else names tracks by id: plays, stream health, song links
(``/song/<id>``) that clients stored, the ``audio_id`` lookups of reports. ``StoreWriter.commit``
gives new ids, so the copy has a commit path of its own, built from the same two steps: the batch's
postings are written to the target's index (``IndexWriter.write``, outside any transaction), then one
short catalog transaction inserts the rows with their source ids (``Catalog.insert_track(track_id=)``),
their ``added_at`` and ``source_files``, and publishes the write; if it fails the write is aborted.
Before any track, the target's PostgreSQL id counter (``id_blocks``) is moved past every id the
source ever used, so no writer of the cluster is handed a copied id (or a deleted track's).

Resuming is by id: a track the target already has was committed whole (rows and postings in one
transaction), so a run skips every id present and copies the others. A run killed between an index
write and its commit leaves an unpublished part that the target's next writer deletes once its
lease has run out (``index/redis_cluster.py``): invisible meanwhile, never counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from soundmark.catalog.sql import Connection
from soundmark.catalog.sqlite import Catalog
from soundmark.errors import StoreError
from soundmark.index.base import TrackPostings
from soundmark.migrate.source import SourceStore
from soundmark.store import StoreWriter

# How many ids one IN (...) list names.
_ID_CHUNK = 500


@dataclass(frozen=True)
class TrackCopy:
    """What the track copy did: ``copied`` now, ``skipped`` (already in the target), ``postings`` written."""

    total: int
    copied: int
    skipped: int
    postings: int


def target_track_ids(conn: Connection) -> set[int]:
    return {int(r[0]) for r in conn.execute("SELECT id FROM tracks")}


def reserve_copied_ids(catalog: Catalog, next_id: int) -> None:
    """Move the target's track id counter to at least ``next_id`` (PostgreSQL ``id_blocks``)."""
    with catalog.transaction() as conn:
        conn.execute("UPDATE id_blocks SET next_id = ? WHERE name = 'tracks' AND next_id < ?", (next_id, next_id))


def copy_tracks(
    source: SourceStore,
    writer: StoreWriter,
    *,
    batch_tracks: int,
    max_postings: int,
    progress: Callable[[int, int], None] | None = None,
) -> TrackCopy:
    """Copy every source track the target lacks, ``batch_tracks`` (or ``max_postings`` postings)
    per commit; ``progress(done, todo)`` after each commit (it may raise to stop the copy: what is
    committed stays, and the next run resumes)."""
    ids = source.track_ids()
    present = target_track_ids(writer.catalog.conn)
    foreign = present - set(ids)
    if foreign:
        raise StoreError(
            f"the target catalog holds {len(foreign)} tracks the source does not (e.g. id {min(foreign)}):"
            " migrate copies into a catalog of its own"
        )
    todo = [i for i in ids if i not in present]
    reserve_copied_ids(writer.catalog, source.next_track_id())
    done = postings = 0
    if progress is not None:
        progress(0, len(todo))
    batch: list[TrackPostings] = []
    size = 0
    seen: set[int] = set()

    def flush() -> None:
        nonlocal batch, size, done, postings
        commit_with_ids(source, writer, batch)
        done += len(batch)
        postings += size
        batch, size = [], 0
        if progress is not None:
            progress(done, len(todo))

    for tp in source.reader.read_tracks(todo, max_postings):
        seen.add(tp.track_id)
        batch.append(tp)
        size += len(tp.hashes)
        if len(batch) >= batch_tracks or size >= max_postings:
            flush()
    # Tracks the index holds nothing for (no postings were ever written): their rows still move.
    for tid in todo:
        if tid not in seen:
            batch.append(_empty(tid))
            if len(batch) >= batch_tracks:
                flush()
    if batch:
        flush()
    writer.store.refresh(force=True)
    return TrackCopy(total=len(ids), copied=done, skipped=len(ids) - len(todo), postings=postings)


def _empty(track_id: int) -> TrackPostings:
    return TrackPostings(track_id, np.zeros(0, np.uint32), np.zeros(0, np.int32), np.zeros((0, 2), np.int32))


def _in_chunks(conn: Connection, sql: str, ids: Sequence[int]) -> list[Any]:
    """Rows of ``sql`` (with ``{marks}`` for an id list) for every id, ``_ID_CHUNK`` ids a query."""
    rows: list[Any] = []
    for i in range(0, len(ids), _ID_CHUNK):
        chunk = list(ids[i : i + _ID_CHUNK])
        rows += conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall()
    return rows


def commit_with_ids(source: SourceStore, writer: StoreWriter, batch: Sequence[TrackPostings]) -> None:
    """Write ``batch``'s postings to the target index, then insert its tracks with their source ids
    (rows, ``added_at``, source files) and publish the write in one short transaction."""
    ids = [int(p.track_id) for p in batch]
    tracks = source.catalog.get_tracks(ids)
    src = source.catalog.conn
    added = {
        int(r[0]): float(r[1]) for r in _in_chunks(src, "SELECT id, added_at FROM tracks WHERE id IN ({marks})", ids)
    }
    files = _in_chunks(
        src, "SELECT path, size, mtime_ns, file_sha256, track_id FROM source_files WHERE track_id IN ({marks})", ids
    )
    catalog = writer.catalog
    written = writer.index.write(batch)
    try:
        with catalog.transaction():
            for tid in ids:
                t = tracks[tid]
                catalog.insert_track(t.meta, t.duration, t.source, t.content_hash, t.n_hashes, track_id=tid)
            catalog.conn.executemany("UPDATE tracks SET added_at = ? WHERE id = ?", [(added[t], t) for t in ids])
            for row in files:
                path, size, mtime_ns, sha, tid = row
                catalog.record_source(str(path), int(size), int(mtime_ns), str(sha), int(tid))
            writer.index.publish(written)
    except BaseException as exc:
        writer.index.abort(written)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"could not commit copied tracks to the target catalog: {exc}") from exc
        raise
