"""The linear comparison: the counting-sorted posting table, seeds spread over each file, the
exact recount of candidates, and on the planted folder the same pairs as comparing all with all
while reading a bounded number of postings per hash."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import Library
from soundmark.audit.overlap import aligned_hits, file_print, pair_hits
from soundmark.audit.run import AuditedFile, AuditOptions, AuditReport, compare_files
from soundmark.audit.seeds import seed_hashes
from soundmark.audit.table import HashLayoutError, PostingTable
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import collect_items, extract_all

PARAMS = FingerprintParams()


def _peaks(rng: np.random.Generator, n: int, frames: int) -> np.ndarray:
    t = np.sort(rng.integers(0, frames, n))
    return np.stack([t, rng.integers(0, 256, n)], axis=1).astype(np.int32)


def test_the_table_holds_every_posting_once_by_hash() -> None:
    rng = np.random.default_rng(5)
    table = PostingTable(PARAMS)
    prints = {k: _peaks(rng, 300, 2000) for k in (7, 2, 11)}
    for k, p in prints.items():
        table.add(k, p)
    with pytest.raises(ValueError, match="added twice"):
        table.add(7, prints[7])
    table.freeze()
    ref = [(int(h), k, int(t)) for k in prints for h, t in zip(*table.hashes(k), strict=True)]
    assert table.postings() == len(ref)
    distinct = np.unique([h for h, _, _ in ref]).astype(np.uint32)
    hits = table.lookup(distinct)
    got = sorted(
        (int(distinct[p]), int(k), int(t)) for p, k, t in zip(hits.hash_pos, hits.track_ids, hits.times, strict=True)
    )
    assert got == sorted(ref)
    assert np.all(np.diff(hits.track_ids[hits.hash_pos == 0]) >= 0)  # files ascending within a hash
    assert table.counts(distinct).sum() == len(ref)
    with pytest.raises(RuntimeError, match="frozen"):
        table.add(8, prints[7])


def test_hashes_too_wide_for_the_dense_table_are_refused() -> None:
    with pytest.raises(HashLayoutError, match="too wide"):
        PostingTable(replace(PARAMS, freq_bits=14))


def test_seeds_are_the_rarest_shared_hashes_of_every_second() -> None:
    # A: 10 blocks of 31 frames, 8 entries each; counts rise with the hash; hash 0 is A's alone.
    hashes = np.tile(np.arange(8, dtype=np.uint32), 10)
    times = np.repeat(np.arange(10) * 31, 8)
    counts = {0: 10, 1: 12, 2: 13, 3: 20, 4: 40, 5: 80, 6: 5000, 7: 160}  # hash 0: held by A only
    a = file_print(1, hashes, times, lambda u: np.array([counts[int(h)] for h in u]))
    # Budget 2 postings per entry: 16 a block; hashes 1 (12) fit, 1+2 (25) do not.
    assert seed_hashes(a, 2.0, 4000, 31).tolist() == [1]
    assert seed_hashes(a, 8.0, 4000, 31).tolist() == [1, 2, 3]  # 45 ≤ 64 < 85
    assert seed_hashes(a, 1000.0, 4000, 31).tolist() == [1, 2, 3, 4, 5, 7]  # 6 is over the cap


def test_the_recount_is_the_full_lookup_on_the_candidates() -> None:
    rng = np.random.default_rng(9)
    table = PostingTable(PARAMS)
    base = _peaks(rng, 800, 4000)
    table.add(0, base)
    inside = np.concatenate([base[base[:, 0] < 2000] + [300, 0], _peaks(rng, 200, 3000)])
    table.add(1, inside[np.argsort(inside[:, 0], kind="stable")])  # half of file 0, 300 frames on
    for k in (2, 3):
        table.add(k, _peaks(rng, 800, 4000))
    table.freeze()
    a = file_print(0, *table.hashes(0), table.counts)
    every = aligned_hits(a, table.lookup(a.unique))
    for others in ([1], [1, 3], [2, 3]):
        got = pair_hits(a, [(k, *table.hashes(k)) for k in others], np.ones(len(a.unique), dtype=bool))
        keep = np.isin(every.others, others)
        want = sorted(zip(every.others[keep], every.offsets[keep], every.times[keep], strict=True))
        assert sorted(zip(got.others, got.offsets, got.times, strict=True)) == want


@pytest.fixture(scope="module")
def planted(library: Library) -> tuple[PostingTable, list[AuditedFile]]:
    table, files = PostingTable(PARAMS), []
    items = collect_items([library.root])
    for key, (item, result) in enumerate(extract_all(items, PARAMS, 3600, 2)):
        if not isinstance(result, str):
            table.add(key, result.peaks, result.hashes)
            files.append(AuditedFile(key, str(item.path), result.duration))
    table.freeze()
    return table, sorted(files, key=lambda f: f.key)


def _audit(planted: tuple[PostingTable, list[AuditedFile]], options: AuditOptions) -> AuditReport:
    table, files = planted
    report = AuditReport("planted", list(files))
    compare_files(report, table, PARAMS, options, None)
    return report


def _found(report: AuditReport) -> dict[tuple[str, str], tuple[str, tuple[float, ...]]]:
    names = {f.key: Path(f.name).name for f in report.files}
    return {(names[p.a], names[p.b]): (p.kind, tuple(x for s in p.segments for x in vars(s).values()))
            for p in report.pairs}  # fmt: skip


def test_seeding_finds_what_comparing_all_with_all_finds(planted: tuple[PostingTable, list[AuditedFile]]) -> None:
    """Every file is a candidate of every other (seeds: all hashes, threshold: the floor), or
    a few rare hashes a second seed the candidates: the same pairs with the same spans."""
    everything = _audit(planted, AuditOptions(seed_postings=1e9, seed_share=0.0))
    seeded = _audit(planted, AuditOptions(seed_postings=0.5))
    assert len(everything.pairs) == 6 + 1 + 1 + 3  # t1's four copies, the remaster, the edit, the mix
    assert _found(seeded) == _found(everything)
    assert seeded.stats.candidates < everything.stats.candidates
    hashes = sum(len(planted[0].hashes(f.key)[0]) for f in planted[1])
    assert seeded.stats.seed_hits <= 0.5 * hashes  # the budget bounds the postings read


def test_a_fixed_low_cap_loses_what_the_seeded_recount_keeps(planted: tuple[PostingTable, list[AuditedFile]]) -> None:
    """Capping the counted hashes at a few postings (the rejected design) drops the degraded
    copies; seeding from rare hashes and recounting on all of them keeps them."""
    seeded = _audit(planted, AuditOptions(seed_postings=0.5))
    capped = _audit(planted, AuditOptions(seed_postings=0.5, max_postings_per_hash=2))
    assert len(capped.pairs) < len(seeded.pairs)
