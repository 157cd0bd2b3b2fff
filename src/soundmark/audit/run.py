"""The audit use case: which files of a folder (or tracks of a store) share audio, adding nothing.

A folder's files are fingerprinted once, in worker processes, by the extraction ``soundmark add``
runs (``ingest``), into a ``PostingTable`` held in memory; a store's tracks are read as they are
stored (their peaks, from which the reference hashes are recomputed exactly: the index hashes
are ``pair_hashes`` of those very peaks), so nothing is decoded again. Then each file's rarest
hashes pick the files it may share audio with (``audit/seeds.py``: the work per file does not
grow with the folder), its hashes are counted against those files' own (``audit/overlap.py``:
aligned spans), each span is checked on the peaks (``match.verify.shared_peaks``: most of A's
peaks must be found again in B there, far more than at wrong offsets), and the verified pairs
are described and grouped (``audit/groups.py``).

Guards against chance: hashes with more postings than the matcher's stop-word cap
(``FingerprintParams.max_postings_per_hash``) are not counted; a span needs ``min_overlap`` seconds
at a density of aligned hashes (``AlignSettings.min_density``) that unrelated music does not
reach; then the peak check. Alignment is at one fixed offset per stretch: a copy played faster
or slower (a radio speed-up) is not found.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from soundmark.audit.groups import Group, PairOverlap, Segment, describe, group_pairs, snap
from soundmark.audit.overlap import Alignment, AlignSettings, file_print, find_alignments, pair_hits
from soundmark.audit.seeds import SeedSettings, candidates
from soundmark.audit.table import PostingTable
from soundmark.errors import SoundmarkError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import collect_items, extract_all
from soundmark.match.verify import NULL_SHIFTS, shared_peaks
from soundmark.store import Store

MIN_PEAK_SHARE = 0.25  # share of A's peaks in a span that B must have at the aligned place ...
NULL_FACTOR = 2.0  # ... and this many times what the best of a few wrong offsets gives

ProgressFn = Callable[[str, int, int], None]  # (stage: "fingerprint" | "read" | "compare", done, total)


class NothingToAuditError(SoundmarkError):
    """No audio file under the given paths, or an empty store."""


@dataclass(frozen=True)
class AuditOptions:
    min_overlap_seconds: float = 10.0  # shortest shared stretch reported
    processes: int = 0  # fingerprinting worker processes; 0 = one per core
    max_seconds: float = 6 * 3600  # longest file fingerprinted (longer ones are reported as failures)
    max_postings_per_hash: int | None = None  # stop-word cap; None: the matcher's (FingerprintParams)
    seed_postings: float = SeedSettings.postings  # postings read per hash of a file to find its candidates
    seed_share: float = SeedSettings.share  # share of a shortest overlap's seeds that makes a candidate


@dataclass(frozen=True)
class AuditedFile:
    key: int  # the audit's id of the file (a store's track id)
    name: str  # the path, or for a store's track its source path (else "track N")
    duration: float  # seconds
    title: str | None = None


@dataclass
class AuditStats:
    """What an audit cost (``benchmarks/audit.py`` reports it)."""

    read_seconds: float = 0.0  # fingerprinting the files, or reading a store's peaks, into the table
    compare_seconds: float = 0.0  # seeding, recounting, verifying, grouping
    postings: int = 0  # in the table
    table_bytes: int = 0  # the table and the files' peaks
    hits_per_hash: float = 0.0  # postings an all-files lookup of a hash meets on average (stop-words out)
    seed_hits: int = 0  # postings read to find candidates
    candidates: int = 0  # pairs of files recounted
    recount_hits: int = 0  # hits counted between candidates


@dataclass
class AuditReport:
    source: str  # what was audited: the folder(s), or the store
    files: list[AuditedFile] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    groups: list[Group] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    stats: AuditStats = field(default_factory=AuditStats)

    @property
    def pairs(self) -> list[PairOverlap]:
        return [p for g in self.groups for p in g.pairs]


class PeakReader(Protocol):
    """What the audit reads of a store's index: the ``FingerprintIndex`` port's peaks."""

    def track_peaks(self, track_id: int) -> np.ndarray: ...


def audit_folder(
    paths: Sequence[Path], params: FingerprintParams, options: AuditOptions, progress: ProgressFn | None = None
) -> AuditReport:
    """Audit the audio files under ``paths`` (folders searched recursively); a file that cannot
    be decoded is listed in ``failures`` and the audit goes on."""
    start = time.perf_counter()
    items = collect_items(paths)
    report = AuditReport(", ".join(str(p) for p in paths))
    if not items:
        raise NothingToAuditError(f"no audio files found under {report.source}")
    processes = max(1, min(options.processes or os.cpu_count() or 1, len(items)))
    table = PostingTable(params)
    order = {item.path: i for i, item in enumerate(items)}
    found: dict[int, AuditedFile] = {}
    for done, (item, result) in enumerate(extract_all(items, params, options.max_seconds, processes), 1):
        if isinstance(result, str):
            report.failures.append((str(item.path), result))
        else:
            key = order[item.path]
            table.add(key, result.peaks, result.hashes)
            found[key] = AuditedFile(key, str(item.path), result.duration, result.meta.title)
        if progress:
            progress("fingerprint", done, len(items))
    table.freeze()
    report.stats.read_seconds = time.perf_counter() - start
    report.files = [found[k] for k in sorted(found)]
    report.failures.sort()
    compare_files(report, table, params, options, progress)
    report.wall_seconds = time.perf_counter() - start
    return report


def audit_store(store: Store, options: AuditOptions, progress: ProgressFn | None = None) -> AuditReport:
    """Audit the tracks of ``store`` from their stored peaks (nothing is decoded or written)."""
    start = time.perf_counter()
    store.refresh()
    report = AuditReport(str(store.root))
    page = 1000
    while batch := store.catalog.list_tracks(limit=page, offset=len(report.files)):
        report.files += [AuditedFile(t.id, t.source or f"track {t.id}", t.duration, t.meta.title) for t in batch]
    if not report.files:
        raise NothingToAuditError(f"the store at {store.root} holds no tracks")
    table = _read_prints(store.index, store.params, [f.key for f in report.files], progress)
    report.stats.read_seconds = time.perf_counter() - start
    compare_files(report, table, store.params, options, progress)
    report.wall_seconds = time.perf_counter() - start
    return report


def _read_prints(index: PeakReader, params: FingerprintParams, keys: Sequence[int],
                 progress: ProgressFn | None) -> PostingTable:  # fmt: skip
    """The stored peaks of ``keys`` as a frozen posting table."""
    table = PostingTable(params)
    for done, key in enumerate(keys, 1):
        table.add(key, index.track_peaks(key))
        if progress:
            progress("read", done, len(keys))
    table.freeze()
    return table


def compare_files(
    report: AuditReport, table: PostingTable, params: FingerprintParams, options: AuditOptions,
    progress: ProgressFn | None,
) -> None:  # fmt: skip
    """Each of ``report.files`` (keys of ``table``, frozen) against its candidates
    (``audit/seeds.py``): the verified pairs, grouped, and what it cost, into ``report``."""
    start, stats = time.perf_counter(), report.stats
    settings = AlignSettings(min_overlap=max(1, round(options.min_overlap_seconds / params.frame_seconds)))
    durations = {f.key: f.duration for f in report.files}
    report.audio_seconds = sum(durations.values())
    cap = options.max_postings_per_hash or params.max_postings_per_hash
    seeding = SeedSettings(options.seed_postings, options.seed_share)
    stats.postings, stats.table_bytes, stats.hits_per_hash = table.postings(), table.nbytes(), table.hits_per_hash(cap)
    pairs: list[PairOverlap] = []
    for done, f in enumerate(report.files, 1):
        hashes, times = table.hashes(f.key)
        if len(hashes):
            a = file_print(f.key, hashes, times, table.counts)
            others, seed_hits = candidates(a, table, seeding, settings.min_overlap, cap, settings.tolerance)
            stats.seed_hits += seed_hits
            stats.candidates += len(others)
            if others:
                hits = pair_hits(a, [(k, *table.hashes(k)) for k in others], a.counts <= cap)
                stats.recount_hits += len(hits.others)
                found = find_alignments(hits, settings)
                pairs += _pairs(f.key, found, table, table.track_peaks(f.key), durations, params)
        if progress:
            progress("compare", done, len(report.files))
    report.groups = group_pairs(pairs, [f.key for f in report.files])
    stats.compare_seconds = time.perf_counter() - start


def _pairs(
    key: int, found: Iterable[Alignment], index: PeakReader, peaks: np.ndarray, durations: dict[int, float],
    params: FingerprintParams,
) -> list[PairOverlap]:  # fmt: skip
    """The verified alignments of file ``key`` with each other file, as described pairs."""
    by_other: dict[int, list[tuple[Alignment, float]]] = {}
    for a in found:
        if a.other not in durations:  # a track removed while the audit ran
            continue
        other_peaks = index.track_peaks(a.other)
        share = _verified_share(peaks, other_peaks, a)
        if share is not None:
            by_other.setdefault(a.other, []).append((a, share))
    fs = params.frame_seconds
    out = []
    for other, checked in by_other.items():
        segments = []
        for a, _ in checked:
            a0, a1 = snap(a.start * fs, a.end * fs, durations[key])
            b0, b1 = snap(a0 + a.offset * fs, a1 + a.offset * fs, durations[other])
            segments.append(Segment(round(a0, 2), round(a1, 2), round(b0, 2), round(b1, 2)))
        votes = sum(a.votes for a, _ in checked)
        out.append(describe(key, other, segments, durations[key], durations[other], votes, checked[0][1]))
    return out


def _verified_share(peaks_a: np.ndarray, peaks_b: np.ndarray, a: Alignment) -> float | None:
    """Share of A's peaks in the span that B has at the aligned place, when it stands out
    against a few wrong offsets; None when the span does not hold up."""
    span = a.end - a.start
    share = shared_peaks(peaks_a, a.start, peaks_b, a.start + a.offset, span)
    null = max(shared_peaks(peaks_a, a.start, peaks_b, a.start + a.offset + int(s), span) for s in NULL_SHIFTS[::4])
    return share if share >= max(MIN_PEAK_SHARE, NULL_FACTOR * null) else None
