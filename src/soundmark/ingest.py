"""Catalog ingest: parallel decode + fingerprint, one writer committing batches.

Extraction runs in worker processes (all cores by default); the parent process is the single
writer. Tracks are committed in batches, each atomically, so an interrupted ingest keeps every
batch committed before it and a re-run skips them (duplicates are detected by content).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from soundmark.catalog.manifest import ManifestEntry
from soundmark.catalog.models import SourceFile, TrackMeta
from soundmark.catalog.sqlite import Catalog
from soundmark.catalog.tags import read_tags
from soundmark.errors import SoundmarkError, TooShortError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.fingerprint.stream import fingerprint_source
from soundmark.match.dedupe import find_duplicate
from soundmark.proc import die_with_parent
from soundmark.store import NewTrack, Store, StoreWriter

AUDIO_SUFFIXES = {
    ".mp3", ".ogg", ".oga", ".opus", ".flac", ".wav", ".m4a", ".aac", ".mp4", ".m4v", ".mkv",
    ".webm", ".wma", ".aiff", ".aif", ".mka", ".mov", ".ac3", ".alac", ".caf",
}  # fmt: skip
MIN_TRACK_SECONDS = 2.0


@dataclass(frozen=True)
class IngestItem:
    path: Path
    meta: TrackMeta  # overrides read over the file's tags


@dataclass
class IngestReport:
    added: list[tuple[int, str]] = field(default_factory=list)  # (track id, path)
    duplicates: list[tuple[str, int]] = field(default_factory=list)  # (path, existing track id)
    known: list[tuple[str, int]] = field(default_factory=list)  # (path, track id): skipped undecoded
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def realtime_factor(self) -> float:
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def collect_items(paths: Iterable[Path]) -> list[IngestItem]:
    """Files as given, and audio files found under directories, in a stable order."""
    items = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            items += [IngestItem(f, TrackMeta()) for f in found]
        else:
            items.append(IngestItem(p, TrackMeta()))
    return items


def items_from_manifest(entries: Iterable[ManifestEntry]) -> list[IngestItem]:
    return [IngestItem(e.path, e.meta) for e in entries]


def extract(item: IngestItem, params: FingerprintParams, max_seconds: float) -> NewTrack:
    """Decode and fingerprint one file (runs in a worker process).

    Decoding streams into the fingerprinter, so memory follows the fingerprint, not the audio;
    a file that decodes to more than ``max_seconds`` is refused while it decodes.
    """
    fp, duration = fingerprint_source(item.path, params, max_seconds)
    if duration < MIN_TRACK_SECONDS:
        raise TooShortError(f"only {duration:.1f} s of audio")
    if len(fp.hashes) == 0:
        raise TooShortError("no fingerprint could be extracted (silence?)")
    digest = hashlib.sha256()
    digest.update(fp.hashes.tobytes())
    digest.update(fp.times.tobytes())
    meta = read_tags(item.path).merged(item.meta)
    if not meta.title:
        meta = meta.merged(TrackMeta(title=item.path.stem))
    return NewTrack(meta, duration, str(item.path), digest.hexdigest(), fp.hashes, fp.times, fp.peaks)


def _extract_safe(item: IngestItem, params: FingerprintParams, max_seconds: float) -> NewTrack | str:
    try:
        return extract(item, params, max_seconds)
    except SoundmarkError as exc:
        return f"{type(exc).__name__}: {exc}"
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"


def extract_all(
    items: list[IngestItem], params: FingerprintParams, max_seconds: float, processes: int
) -> Iterator[tuple[IngestItem, NewTrack | str]]:
    """Extract ``items`` in ``processes`` worker processes (in this one when 1): each item with
    its track, or the reason it could not be read, in completion order, a bounded number in flight."""
    if processes <= 1:
        for item in items:
            yield item, _extract_safe(item, params, max_seconds)
        return
    with ProcessPoolExecutor(max_workers=processes, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: dict[Future[NewTrack | str], IngestItem] = {}
        todo = iter(items)
        while True:
            while len(pending) < 2 * processes:
                queued = next(todo, None)
                if queued is None:
                    break
                pending[pool.submit(_extract_safe, queued, params, max_seconds)] = queued
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield pending.pop(fut), fut.result()


def ingest(
    store: Store,
    items: list[IngestItem],
    *,
    processes: int = 0,
    batch_tracks: int = 64,
    max_seconds: float = 6 * 3600,
    progress: Callable[[IngestItem, str], None] | None = None,
) -> IngestReport:
    """Add ``items`` to ``store``; returns what happened to each."""
    processes = processes or os.cpu_count() or 1
    processes = max(1, min(processes, len(items)))
    report = IngestReport()
    start = time.perf_counter()
    with store.writer() as writer:
        # Under the write lock, so files another writer committed meanwhile are known too.
        todo, sources = _skip_known(writer, items, report, progress)
        batch: list[tuple[IngestItem, NewTrack]] = []
        pending = _Pending(sources)
        last_flush = time.monotonic()
        for item, result in extract_all(todo, store.params, max_seconds, processes):
            status = "failed"
            if isinstance(result, str):
                report.failures.append((str(item.path), result))
            else:
                dup = _duplicate_of(store, result, batch)
                if dup is not None:
                    report.duplicates.append((str(item.path), dup))
                    pending.duplicate(item, dup, result)
                    status = "duplicate"
                else:
                    batch.append((item, result))
                    status = "added"
            if progress:
                progress(item, status)
            if batch and (len(batch) >= batch_tracks or time.monotonic() - last_flush > 30):
                _flush(writer, batch, report, pending)
                writer.merge_by_policy()  # tiered: cheap unless a tier filled (index/policy.py)
                last_flush = time.monotonic()
        _flush(writer, batch, report, pending)
        writer.merge_by_policy()
    report.wall_seconds = time.perf_counter() - start
    return report


def _duplicate_of(store: Store, track: NewTrack, batch: list[tuple[IngestItem, NewTrack]]) -> int | None:
    """Existing track id holding the same audio; -1 for a duplicate inside the pending batch."""
    existing = store.catalog.find_by_hash(track.content_hash or "")
    if existing is not None:
        return existing
    if any(t.content_hash == track.content_hash for _, t in batch):
        return -1
    return find_duplicate(store, track)


def _source_key(path: Path) -> str:
    return str(Path(path).resolve())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _known_file(catalog: Catalog, path: Path) -> tuple[int | None, SourceFile | None]:
    """The stored track this file was ingested as (or is a byte-identical copy of), and the
    file's identity to remember; (None, None) when it cannot be read (extraction says why).

    An unchanged file (same path, size, mtime) is known from one index lookup; a changed or new
    one is read once for its sha256, far cheaper than decoding it.
    """
    key = _source_key(path)
    try:
        st = os.stat(key)
        tid = catalog.known_source(key, st.st_size, st.st_mtime_ns)
        if tid is not None:
            return tid, None
        src = SourceFile(key, st.st_size, st.st_mtime_ns, _file_sha256(Path(key)))
    except OSError:
        return None, None
    return catalog.find_source_by_sha256(src.sha256), src


def _skip_known(
    writer: StoreWriter,
    items: list[IngestItem],
    report: IngestReport,
    progress: Callable[[IngestItem, str], None] | None,
) -> tuple[list[IngestItem], dict[str, SourceFile]]:
    """The items still to decode, and the identity of each file to remember with its track."""
    todo: list[IngestItem] = []
    sources: dict[str, SourceFile] = {}
    copies: list[tuple[SourceFile, int]] = []
    for item in items:
        tid, src = _known_file(writer.catalog, item.path)
        if tid is None:
            todo.append(item)
            if src is not None:
                sources[src.path] = src
            continue
        report.known.append((str(item.path), tid))
        if src is not None:  # same bytes under another path or mtime: know this one too
            copies.append((src, tid))
        if progress:
            progress(item, "known")
    writer.remember_sources(copies)
    return todo, sources


@dataclass
class _Pending:
    """Source files waiting to be remembered with the next committed batch."""

    sources: dict[str, SourceFile]
    duplicates: list[tuple[SourceFile, int | str]] = field(default_factory=list)  # track id or content hash

    def source(self, item: IngestItem) -> SourceFile | None:
        return self.sources.get(_source_key(item.path))

    def duplicate(self, item: IngestItem, existing: int, track: NewTrack) -> None:
        src = self.source(item)
        if src is not None:
            # -1: the twin waits in the current batch; its id is known once that commits.
            self.duplicates.append((src, existing if existing >= 0 else track.content_hash or ""))


def _flush(
    writer: StoreWriter, batch: list[tuple[IngestItem, NewTrack]], report: IngestReport, pending: _Pending
) -> None:
    by_hash: dict[str, int] = {}
    if batch:
        ids = writer.commit([t for _, t in batch], sources=[pending.source(item) for item, _ in batch])
        for (item, track), tid in zip(batch, ids, strict=True):
            report.added.append((tid, str(item.path)))
            report.audio_seconds += track.duration
            if track.content_hash:
                by_hash[track.content_hash] = tid
    known = []
    for src, twin in pending.duplicates:
        known_id = twin if isinstance(twin, int) else by_hash.get(twin)
        if known_id is not None:
            known.append((src, known_id))
    writer.remember_sources(known)
    pending.duplicates.clear()
    batch.clear()
