"""The migrate use case: an embedded store copied into PostgreSQL + a Redis Cluster, resumably.

``migrate(source, target, catalog_url=, index_url=)`` opens the source read-only (``source.py``),
opens or creates the node directory ``target`` on the shared backends (a ``Store`` with the source's
fingerprint parameters, so the target refuses to serve queries computed otherwise), then copies the
tracks with their ids and postings (``tracks.py``), the accounts and stream history (``tables.py``)
and checks the result (``verify.py``).

The target catalog records which store it was migrated from (``meta.migrated_from``): a run into a
catalog that holds another store, or anything before the first run, is refused rather than merged;
a run into a catalog already migrated from this source resumes, skipping the tracks it has and
bringing the copied tables up to the source's current rows. So the cut-over is: migrate while the
old store still serves, stop it, migrate again (only what changed moves), start the nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from soundmark.catalog.sql import POSTGRESQL
from soundmark.catalog.sqlite import Catalog
from soundmark.errors import StoreError
from soundmark.migrate.source import SourceStore
from soundmark.migrate.tables import NOT_COPIED, copy_tables
from soundmark.migrate.tracks import TrackCopy, copy_tracks
from soundmark.migrate.verify import Verification, verify
from soundmark.store import Store, use_catalog_url

BATCH_TRACKS = 64
# Postings held while reading a window of source tracks and per commit (~24 bytes each: ~100 MB).
MAX_POSTINGS = 1 << 22
MARKER = "migrated_from"


@dataclass(frozen=True)
class MigrateProgress:
    """Where a run is: ``stage`` "tracks" (``done`` of ``total`` tracks to copy), "tables"
    (``done`` of ``total`` tables, ``detail`` the last one) or "verify"."""

    stage: str
    done: int
    total: int
    detail: str = ""


@dataclass(frozen=True)
class MigrateReport:
    tracks: TrackCopy
    tables: dict[str, int]  # rows read from the source per table
    not_copied: tuple[str, ...]
    verification: Verification


def _claim(catalog: Catalog, source: Path) -> None:
    """Record the source in the target catalog, or refuse a catalog that holds something else."""
    mark = json.dumps({"path": str(source.resolve())})
    with catalog.transaction() as conn:
        found = catalog.get_meta(MARKER)
        if found == mark:
            return
        if found is not None:
            was = json.loads(found).get("path")
            raise StoreError(f"this catalog was migrated from {was}, not {source.resolve()}: use a catalog of its own")
        for table in ("tracks", "tokens", "streams"):
            if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                raise StoreError(f"the target catalog already holds {table}: migrate copies into an empty catalog")
        catalog.set_meta(MARKER, mark)


def migrate(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    catalog_url: str,
    index_url: str,
    batch_tracks: int = BATCH_TRACKS,
    max_postings: int = MAX_POSTINGS,
    progress: Callable[[MigrateProgress], None] | None = None,
) -> MigrateReport:
    """Copy the embedded store ``source`` into the catalog at ``catalog_url`` and the index at
    ``index_url``, with ``target`` as the node directory that records them. ``progress`` is told
    after every committed batch and table; if it raises, the run stops there (what is committed
    stays) and the next run resumes. StoreError for what cannot be migrated, with the reason."""
    src_root, dst_root = Path(source), Path(target)
    if not catalog_url or not index_url:
        raise StoreError("migrate needs the target's catalog URL (postgresql://...) and index URL (redis://...)")
    if dst_root.exists() and src_root.resolve() == dst_root.resolve():
        raise StoreError("the target directory is the source store: give a new directory for the node")

    def tell(stage: str, done: int, total: int, detail: str = "") -> None:
        if progress is not None:
            progress(MigrateProgress(stage, done, total, detail))

    with SourceStore(src_root) as src:
        use_catalog_url(dst_root, catalog_url, create=True)
        with Store(dst_root, src.params, create=True, index_url=index_url) as dst:
            if dst.catalog.dialect != POSTGRESQL:
                raise StoreError("migrate copies into a PostgreSQL catalog")
            _claim(dst.catalog, src_root)
            with dst.writer() as writer:
                copied = copy_tracks(
                    src,
                    writer,
                    batch_tracks=batch_tracks,
                    max_postings=max_postings,
                    progress=lambda done, total: tell("tracks", done, total),
                )
            tables = copy_tables(
                src.catalog.conn, dst.catalog, progress=lambda name, done, total: tell("tables", done, total, name)
            )
            tell("verify", 0, 1)
            dst.refresh(force=True)
            checked = verify(src, dst.catalog.conn, dst.index, max_postings)
            tell("verify", 1, 1)
    return MigrateReport(tracks=copied, tables=tables, not_copied=NOT_COPIED, verification=checked)
