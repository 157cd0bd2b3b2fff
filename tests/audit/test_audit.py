"""soundmark audit over a real folder (and a real store): planted duplicates of every kind are
found with the right spans and offsets, and nothing else is grouped."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EDIT, MIX_LEAD, SECONDS, Library
from soundmark.audit.groups import PairOverlap
from soundmark.audit.run import AuditOptions, AuditReport, NothingToAuditError, audit_folder, audit_store
from soundmark.catalog.models import TrackMeta
from soundmark.fingerprint.params import FingerprintParams
from soundmark.ingest import IngestItem, ingest
from soundmark.store import Store


@pytest.fixture(scope="module")
def report(library: Library) -> AuditReport:
    return audit_folder([library.root], FingerprintParams(), AuditOptions(processes=2))


def _pair(report: AuditReport, library: Library, x: str, y: str) -> PairOverlap:
    names = {f.key: Path(f.name).relative_to(library.root).as_posix() for f in report.files}
    want = {library.names[x], library.names[y]}
    found = [p for p in report.pairs if {names[p.a], names[p.b]} == want]
    assert len(found) == 1, f"{x} / {y}: {found}"
    return found[0]


def _first(report: AuditReport, p: PairOverlap) -> str:
    return Path(next(f.name for f in report.files if f.key == p.a)).name


def test_exactly_the_planted_groups(report: AuditReport, library: Library) -> None:
    names = library.names
    found = {frozenset(Path(next(f.name for f in report.files if f.key == k)).relative_to(library.root).as_posix()
                       for k in g.members) for g in report.groups}  # fmt: skip
    planted = {
        frozenset({names["t1"], names["t1.mp3"], names["t1.opus"], names["t1.flac"]}),
        frozenset({names["t2"], names["t2.remaster"]}),
        frozenset({names["t3"], names["t3.edit"]}),
        frozenset({names["mix"], names["t4"], names["t5"], names["t6"]}),
    }
    assert found == planted  # the fourteen other pieces are in no group
    assert len(report.files) == 20 + 6


@pytest.mark.parametrize("copy", ["t1.mp3", "t1.opus", "t1.flac"])
def test_a_re_encode_is_the_same_recording(report: AuditReport, library: Library, copy: str) -> None:
    p = _pair(report, library, "t1", copy)
    assert p.kind == "same"
    assert min(p.fraction_a, p.fraction_b) >= 0.95
    assert abs(p.offset_seconds) < 0.1
    assert p.shared_seconds == pytest.approx(SECONDS, abs=1.5)


def test_a_remaster_is_the_same_recording(report: AuditReport, library: Library) -> None:
    p = _pair(report, library, "t2", "t2.remaster")
    assert p.kind == "same"
    assert abs(p.offset_seconds) < 0.1


def test_a_radio_edit_is_contained_with_its_span(report: AuditReport, library: Library) -> None:
    p = _pair(report, library, "t3", "t3.edit")
    assert p.kind == "contains"
    assert _first(report, p) == library.names["t3"]  # the album version contains the edit
    s = p.segments[0]
    assert s.a_start == pytest.approx(EDIT[0], abs=1.0)
    assert s.a_end == pytest.approx(EDIT[1], abs=1.0)
    assert (s.b_start, s.b_end) == (0.0, pytest.approx(EDIT[1] - EDIT[0], abs=0.1))
    assert p.fraction_b == 1.0 and p.fraction_a == pytest.approx(0.5, abs=0.03)


def test_a_track_inside_a_mix_at_its_offset(report: AuditReport, library: Library) -> None:
    p = _pair(report, library, "mix", "t4")
    assert p.kind == "contains"
    assert _first(report, p) == library.names["mix"]
    s = p.segments[0]
    assert s.a_start == pytest.approx(MIX_LEAD, abs=1.0)
    assert s.a_end == pytest.approx(MIX_LEAD + SECONDS, abs=1.0)
    assert p.offset_seconds == pytest.approx(-MIX_LEAD, abs=0.1)  # the track's start is 12 s into the mix
    # the pieces cut into the mix share a part of themselves only
    for part in ("t5", "t6"):
        assert _pair(report, library, "mix", part).kind == "overlap"


def test_an_undecodable_file_is_reported_and_the_audit_goes_on(report: AuditReport, library: Library) -> None:
    assert [(Path(path).name, reason.split(":")[0]) for path, reason in report.failures] == [
        ("broken.mp3", "AudioError")
    ]


def test_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no audio here")
    with pytest.raises(NothingToAuditError, match="no audio files found under"):
        audit_folder([tmp_path], FingerprintParams(), AuditOptions())


def test_a_store_is_audited_from_its_stored_prints(tmp_path: Path, library: Library, report: AuditReport) -> None:
    """The tracks ingested (re-encodes would be refused by ingest's duplicate check, so the
    edit, the mix and its pieces) give the pairs the folder audit gave, from the stored peaks."""
    roles = ["t3", "t3.edit", "mix", "t4", "t5", "t6", "t7", "t8", "t9", "t10"]
    items = [IngestItem(library.root / library.names[r], TrackMeta()) for r in roles]
    with Store(tmp_path / "db", FingerprintParams(), create=True) as store:
        assert len(ingest(store, items, processes=1).added) == len(roles)
    with Store(tmp_path / "db", FingerprintParams()) as store:
        stored = audit_store(store, AuditOptions())
        assert store.info().tracks == len(roles)  # nothing added
    assert len(stored.files) == len(roles) and not stored.failures
    assert sorted(len(g.members) for g in stored.groups) == [2, 4]
    for x, y in [("t3", "t3.edit"), ("mix", "t4"), ("mix", "t5"), ("mix", "t6")]:
        got, want = _pair(stored, library, x, y), _pair(report, library, x, y)
        assert got.kind == want.kind
        # Bounds are measured on the querying file's time axis, so they may differ by a fraction
        # of a second with the files' order (the store's track ids, the folder's names).
        for g, w in zip(got.segments, want.segments, strict=True):
            assert vars(g) == pytest.approx(vars(w), abs=1.0)


def test_an_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    with (
        Store(tmp_path / "db", FingerprintParams(), create=True) as store,
        pytest.raises(NothingToAuditError, match="holds no tracks"),
    ):
        audit_store(store, AuditOptions())
