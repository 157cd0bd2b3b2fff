"""Durability: SIGKILL an ingest (or a compaction) and check the store is whole and resumable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from soundmark.audio.decode import decode
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE
from soundmark.demo import compose_piece, write_wav
from soundmark.fingerprint.extract import fingerprint_samples
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.manifest import SegmentManifest
from soundmark.index.segments import SEGMENTS_DIR
from soundmark.ingest import IngestItem, ingest
from soundmark.match.recognizer import Recognizer
from soundmark.store import Store

PARAMS = FingerprintParams()
N_FILES = 12
SOUNDMARK = Path(sys.executable).with_name("soundmark")

# The ingesting child. Modes make it stop at a chosen point (it then writes MARKER and sleeps
# until killed), except "slow", which just paces the run so the test can kill it mid-way.
_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from soundmark.catalog.models import TrackMeta
    from soundmark.fingerprint.params import FingerprintParams
    from soundmark.index import segments
    from soundmark.ingest import IngestItem, ingest
    from soundmark.store import Store

    mode, db, marker, *files = sys.argv[1:]

    def park():
        Path(marker).write_text(mode)
        time.sleep(600)

    calls = {"write": 0, "save": 0, "cleanup": 0}
    orig_write, orig_save = segments.SegmentIndex.write, segments._save
    orig_unlisted = segments.SegmentIndex.delete_unlisted

    def write(self, batch):
        info = orig_write(self, batch)
        calls["write"] += 1
        if mode == "after_rename" and calls["write"] == 3:
            park()  # segment 3 is renamed into place but its tracks are not committed
        return info

    orig_merged = segments.SegmentIndex.write_merged

    def write_merged(self, names, drop):
        info = orig_merged(self, names, drop)
        if mode == "compact_before_commit":
            park()  # the merged segment exists; the catalog transaction is still open
        return info

    def save(path, array):
        calls["save"] += 1
        if mode == "mid_write" and calls["save"] == 8:
            park()  # half of segment 2 written in its .tmp directory
        orig_save(path, array)

    def delete_unlisted(self, live):
        calls["cleanup"] += 1
        if mode == "compact_after_commit" and calls["cleanup"] == 2:
            park()  # compaction committed; the old segment directories are not deleted yet
        return orig_unlisted(self, live)

    segments.SegmentIndex.write = write
    segments.SegmentIndex.write_merged = write_merged
    segments._save = save
    segments.SegmentIndex.delete_unlisted = delete_unlisted

    with Store(db, FingerprintParams(), create=True) as store:
        if mode.startswith("compact"):
            with store.writer() as w:
                w.remove(store.catalog.list_tracks()[0].id)
                w.compact()
        else:
            pace = (lambda item, status: time.sleep(0.05)) if mode == "slow" else None
            items = [IngestItem(Path(f), TrackMeta(artist="Crash")) for f in files]
            ingest(store, items, processes=1, batch_tracks=1, progress=pace)
    """
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("crash-audio")
    out = []
    for i in range(N_FILES):
        path = root / f"song-{i:02d}.wav"
        write_wav(path, compose_piece(500 + i, 12.0, 8000), 8000)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def prints(files: list[Path]) -> dict[str, object]:
    return {str(f): fingerprint_samples(decode(f, PARAMS.sample_rate), PARAMS) for f in files}


def _ro(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db / CATALOG_FILE}?mode=ro", uri=True, timeout=5)


def _count(db: Path) -> int:
    if not (db / CATALOG_FILE).exists():
        return 0
    try:
        conn = _ro(db)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute("SELECT COUNT(*) FROM tracks").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def _wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Poll ``cond`` until true (True) or the process ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            return cond()
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the ingest child")


def _spawn(mode: str, db: Path, marker: Path, files: list[Path]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode, str(db), str(marker), *map(str, files)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _run_until_marker(mode: str, db: Path, files: list[Path]) -> None:
    marker = db.parent / f"{db.name}.{mode}.marker"
    proc = _spawn(mode, db, marker, files)
    try:
        assert _wait_for(marker.exists, proc), f"child ended (rc {proc.returncode}) before {mode}"
    finally:
        _kill(proc)
    assert proc.returncode == -signal.SIGKILL


def check_store(db: Path, prints: dict[str, object]) -> dict[str, int]:
    """Assert the store is whole; returns source → track id."""
    conn = _ro(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT id, source, n_hashes FROM tracks").fetchall()
        tombs = {r[0] for r in conn.execute("SELECT track_id FROM tombstones")}
    finally:
        conn.close()
    ids = {src: tid for tid, src, _ in rows}
    assert len(ids) == len(rows), "a file is in the store twice"
    with Store(db, PARAMS) as store:
        per_track = Counter(
            int(t)
            for name in store.index.names
            for t in np.load(store.root / SEGMENTS_DIR / name / "tracks.npy").tolist()
        )
        # Every committed track sits in exactly one live segment; nothing else does.
        assert {t: n for t, n in per_track.items() if t not in tombs} == {tid: 1 for tid, _, _ in rows}
        for tid, src, n_hashes in rows:
            fp = prints[src]
            assert n_hashes == len(fp.hashes)
            q = np.unique(fp.hashes)
            hits = store.index.lookup(q, 1 << 30)
            mine = hits.track_ids == tid
            got = Counter(zip(q[hits.hash_pos[mine]].tolist(), hits.times[mine].tolist(), strict=True))
            assert got == Counter(zip(fp.hashes.tolist(), fp.times.tolist(), strict=True))
            np.testing.assert_array_equal(store.index.track_peaks(tid), fp.peaks)
        if rows:
            tid, src, _ = rows[-1]
            x = decode(src, PARAMS.sample_rate)[3 * 8000 : 9 * 8000]
            assert Recognizer(store).recognize(x)[0].track.id == tid
        with store.writer():
            pass
        assert {d.name for d in (db / SEGMENTS_DIR).iterdir()} == set(store.index.names)
    return ids


def test_kill_during_ingest_then_resume_with_cli(tmp_path: Path, files: list[Path], prints: dict[str, object]) -> None:
    for attempt in range(3):
        db = tmp_path / f"db{attempt}"
        proc = _spawn("slow", db, tmp_path / "unused", files)
        try:
            started = _wait_for(lambda db=db: _count(db) >= 3, proc)
        finally:
            _kill(proc)
        committed = _count(db)
        if started and proc.returncode == -signal.SIGKILL and committed < N_FILES:
            break
    else:
        pytest.fail("could not kill the ingest mid-way in 3 attempts")

    before = check_store(db, prints)
    assert len(before) == committed >= 3
    assert all(Path(src) in files for src in before)

    out = subprocess.run(
        [str(SOUNDMARK), "add", "--db", str(db), "--batch", "1", "--processes", "1", "--json", "--quiet"]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(out.stdout)
    assert summary["added"] == N_FILES - committed
    # The committed files are skipped before decoding (known by path, size and mtime).
    assert summary["known"] == committed and summary["duplicates"] == 0
    assert summary["failed"] == 0
    assert summary["tracks_in_store"] == N_FILES
    assert dict(map(tuple, summary["known_as"])) == before

    after = check_store(db, prints)
    assert set(after) == {str(f) for f in files}
    assert all(after[src] == tid for src, tid in before.items())


@pytest.mark.parametrize(
    ("mode", "committed", "orphan"),
    [("after_rename", 2, "seg-"), ("mid_write", 1, ".tmp-seg-")],
)
def test_kill_inside_a_commit(
    tmp_path: Path, files: list[Path], prints: dict[str, object], mode: str, committed: int, orphan: str
) -> None:
    db = tmp_path / "db"
    _run_until_marker(mode, db, files)
    assert _count(db) == committed
    conn = _ro(db)
    try:
        live = {r[0] for r in conn.execute("SELECT name FROM segments")}
    finally:
        conn.close()
    leftovers = {d.name for d in (db / SEGMENTS_DIR).iterdir()} - live
    assert len(leftovers) == 1 and next(iter(leftovers)).startswith(orphan)

    assert len(check_store(db, prints)) == committed  # also removes the orphan

    with Store(db, PARAMS) as store:
        report = ingest(store, [IngestItem(f, TrackMeta()) for f in files], processes=1, batch_tracks=4)
    assert len(report.added) == N_FILES - committed
    assert len(report.known) == committed and report.duplicates == []
    assert set(check_store(db, prints)) == {str(f) for f in files}


@pytest.mark.parametrize("mode", ["compact_before_commit", "compact_after_commit"])
def test_kill_during_compaction(tmp_path: Path, files: list[Path], prints: dict[str, object], mode: str) -> None:
    db = tmp_path / "db"
    with Store(db, PARAMS, create=True) as store:
        ingest(store, [IngestItem(f, TrackMeta()) for f in files], processes=1, batch_tracks=3)
        assert len(store.index.names) == 4
        victim = store.catalog.list_tracks()[0]
    _run_until_marker(mode, db, files)

    ids = check_store(db, prints)
    with Store(db, PARAMS) as store:
        if mode == "compact_before_commit":
            # Rolled back: the removal committed, the compaction did not.
            assert len(store.index.names) == 4
            assert SegmentManifest(store.catalog.conn).tombstones() == [victim.id]
        else:
            assert len(store.index.names) == 1
            assert SegmentManifest(store.catalog.conn).tombstones() == []
    assert victim.source not in ids
    assert len(ids) == N_FILES - 1

    with Store(db, PARAMS) as store, store.writer() as w:
        w.compact()
    assert len(check_store(db, prints)) == N_FILES - 1
