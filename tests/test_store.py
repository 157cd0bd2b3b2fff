"""Store behaviour: parameters, opening, readers beside a writer, removal, duplicates, catalog."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import resample_poly

from soundmark.audio.decode import decode
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sqlite import CATALOG_FILE
from soundmark.demo import compose_piece, write_wav
from soundmark.errors import ParamsMismatchError, StoreError
from soundmark.fingerprint.extract import fingerprint_samples
from soundmark.fingerprint.params import FingerprintParams
from soundmark.index.manifest import SegmentManifest
from soundmark.index.policy import TIER_FACTOR
from soundmark.index.segments import SegmentIndex
from soundmark.ingest import IngestItem, extract, ingest
from soundmark.match.recognizer import Recognizer
from soundmark.store import NewTrack, Store

PARAMS = FingerprintParams()


def _excerpt(path: Path, start: float = 10.0, seconds: float = 8.0) -> np.ndarray:
    x = decode(path, PARAMS.sample_rate)
    sr = PARAMS.sample_rate
    return x[int(start * sr) : int((start + seconds) * sr)]


def _best(store: Store, path: Path) -> int | None:
    matches = Recognizer(store).recognize(_excerpt(path))
    return matches[0].track.id if matches else None


def _id_of(store: Store, path: Path) -> int:
    row = store.catalog.conn.execute("SELECT id FROM tracks WHERE source=?", (str(path),)).fetchone()
    assert row is not None, path
    return int(row[0])


def _segments(store: Store) -> list[str]:
    """The live segments the store's index has loaded (the segment backend's own view)."""
    assert isinstance(store.index, SegmentIndex)
    return store.index.names


def _write_flac(path: Path, x: np.ndarray, sr: int) -> None:
    pcm = np.round(np.clip(x, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=sr, layout="mono")
        step = 4096
        for i in range(0, pcm.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm[:, i : i + step]), format="s16", layout="mono")
            frame.sample_rate = sr
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


# --- opening ----------------------------------------------------------------------------------


def test_other_fingerprint_params_refuse_to_open(tmp_path: Path) -> None:
    db = tmp_path / "db"
    Store(db, PARAMS, create=True).close()
    other = dataclasses.replace(PARAMS, fanout=3)
    with pytest.raises(ParamsMismatchError, match="fingerprint parameters"):
        Store(db, other)
    with pytest.raises(ParamsMismatchError):
        Store(db, other, create=True)
    assert issubclass(ParamsMismatchError, StoreError)
    # Query-only parameters do not change what is stored: those open fine.
    Store(db, dataclasses.replace(PARAMS, max_postings_per_hash=10, query_fanout=4)).close()
    # And the store built with other params refuses the defaults.
    db2 = tmp_path / "db2"
    Store(db2, other, create=True).close()
    with pytest.raises(ParamsMismatchError):
        Store(db2, PARAMS)


def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no soundmark store"):
        Store(tmp_path / "nope", PARAMS)
    assert not (tmp_path / "nope").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError):
        Store(tmp_path / "empty", PARAMS)
    assert not (tmp_path / "empty" / CATALOG_FILE).exists()


# --- a reader beside a writer -----------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from soundmark.catalog.models import TrackMeta
    from soundmark.fingerprint.params import FingerprintParams
    from soundmark.ingest import IngestItem, ingest
    from soundmark.store import Store

    db, *files = sys.argv[1:]
    items = [IngestItem(Path(f), TrackMeta(artist="Writer")) for f in files]
    with Store(db, FingerprintParams()) as store:
        report = ingest(store, items, processes=1, batch_tracks=1, progress=lambda i, s: time.sleep(0.05))
    print(len(report.added), len(report.duplicates), len(report.failures))
    """
)


def test_reader_sees_commits_after_refresh_and_answers_during_writes(
    store_copy: Path, pieces: list, tmp_path: Path
) -> None:
    new_files = []
    for seed in range(300, 310):
        path = tmp_path / f"new-{seed}.wav"
        write_wav(path, compose_piece(seed, 14.0, 8000), 8000)
        new_files.append(path)
    known = pieces[2].path
    known_fp = fingerprint_samples(decode(known, PARAMS.sample_rate), PARAMS)
    known_q = np.unique(known_fp.hashes)

    reader = Store(store_copy, PARAMS)
    try:
        known_id = _id_of(reader, known)
        before = reader.info().tracks
        assert _best(reader, new_files[0]) is None
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store_copy), *map(str, new_files)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        rounds = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            reader.refresh()
            hits = reader.index.lookup(known_q, PARAMS.max_postings_per_hash)
            ids, counts = np.unique(hits.track_ids, return_counts=True)
            assert ids[np.argmax(counts)] == known_id
            rounds += 1
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.split() == ["10", "0", "0"]
        assert rounds > 0

        # Before refresh() the reader's index is the old one; after it the new tracks match.
        reader.refresh()
        assert reader.info().tracks == before + 10
        # ingest's tiered merge policy merged TIER_FACTOR of its 11 small segments into one
        assert reader.index.stats().segments == 11 - TIER_FACTOR + 1
        for path in (new_files[0], new_files[-1]):
            assert _best(reader, path) == _id_of(reader, path)
        assert _best(reader, known) == known_id
    finally:
        reader.close()


def test_reader_refresh_survives_compaction_between_reads(
    store_copy: Path, pieces: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction committing (and deleting the old segment dirs) while a reader refreshes."""
    writer_store = Store(store_copy, PARAMS)
    reader = Store(store_copy, PARAMS)
    try:
        # Give the store several segments and a tombstone so compaction rewrites everything.
        rng = np.random.default_rng(0)
        with writer_store.writer() as w:
            ids = [
                w.commit(
                    [
                        NewTrack(
                            TrackMeta(),
                            1.0,
                            None,
                            None,
                            rng.integers(0, 2**32, 50, dtype=np.uint64).astype(np.uint32),
                            np.arange(50, dtype=np.int32),
                            np.zeros((0, 2), np.int32),
                        )
                    ]
                )[0]
                for _ in range(3)
            ]
            w.remove(ids[0])
        original = SegmentManifest.snapshot
        compacted: list[int] = []
        started: list[bool] = []

        def snapshot_then_compact(manifest: SegmentManifest) -> tuple[list[str], list[int]]:
            snap = original(manifest)
            if not started:  # once: the reader's snapshot, taken just before the compaction
                started.append(True)
                with writer_store.writer() as w:
                    compacted.append(w.compact())
            return snap

        monkeypatch.setattr(SegmentManifest, "snapshot", snapshot_then_compact)
        reader.refresh()
        monkeypatch.undo()
        assert len(compacted) == 1 and compacted[0] >= 4  # the three new segments and the old
        reader.refresh()
        assert _segments(reader) == _segments(writer_store)
        assert reader.index.stats().segments == 1
        assert _best(reader, pieces[0].path) == _id_of(reader, pieces[0].path)
    finally:
        reader.close()
        writer_store.close()


# --- removal ----------------------------------------------------------------------------------


def test_remove_deletes_track_metadata_and_postings(store_copy: Path, pieces: list) -> None:
    path = pieces[1].path
    with Store(store_copy, PARAMS) as store:
        tid = _id_of(store, path)
        with store.writer() as w:
            w.update_meta(tid, TrackMeta(title="Gone", external={"spotify_id": "abc", "isrc_note": "x"}))
        assert store.catalog.get_track(tid).meta.external == {"spotify_id": "abc", "isrc_note": "x"}
        assert _best(store, path) == tid
        reader = Store(store_copy, PARAMS)
        with store.writer() as w:
            assert w.remove(tid)
            assert not w.remove(tid)
        assert store.catalog.get_track(tid) is None
        conn = store.catalog.conn
        assert conn.execute("SELECT COUNT(*) FROM track_external WHERE track_id=?", (tid,)).fetchone()[0] == 0
        assert SegmentManifest(store.catalog.conn).tombstones() == [tid]
        fp = fingerprint_samples(decode(path, PARAMS.sample_rate), PARAMS)
        hits = store.index.lookup(np.unique(fp.hashes), PARAMS.max_postings_per_hash)
        assert tid not in hits.track_ids.tolist()
        assert _best(store, path) != tid
        reader.refresh()
        assert _best(reader, path) is None
        reader.close()
        # Removed audio is no duplicate: adding it again creates a new track.
        report = ingest(store, [IngestItem(path, TrackMeta())], processes=1)
        assert report.duplicates == [] and len(report.added) == 1
        new_id = report.added[0][0]
        assert new_id != tid
        assert _best(store, path) == new_id


# --- duplicates -------------------------------------------------------------------------------


def test_re_adding_the_same_file_is_known(store_copy: Path, pieces: list) -> None:
    with Store(store_copy, PARAMS) as store:
        before = store.info()
        expected = {str(p.path): _id_of(store, p.path) for p in pieces[:2]}
        report = ingest(store, [IngestItem(p.path, TrackMeta()) for p in pieces[:2]], processes=1)
        assert report.added == [] and report.duplicates == []
        assert dict(report.known) == expected
        after = store.info()
        assert (after.tracks, after.postings, after.segments) == (
            before.tracks,
            before.postings,
            before.segments,
        )


def test_re_encoded_copies_are_duplicates_by_self_match(store_copy: Path, pieces: list, tmp_path: Path) -> None:
    piece = pieces[3]
    x = piece.samples
    resampled = tmp_path / "resampled-44k.wav"
    write_wav(resampled, resample_poly(x, 2, 1).astype(np.float32), 44100)
    flac = tmp_path / "copy.flac"
    _write_flac(flac, x, 22050)
    # Trimmed by 0.16 s (5 frames), quieter, with a little noise, at 16 kHz: every hash time
    # shifts, so only the self-match (not the content hash) can recognise it.
    noise = np.random.default_rng(5).normal(0, 0.003, len(x) - 3528).astype(np.float32)
    shifted = tmp_path / "shifted-16k.wav"
    write_wav(shifted, resample_poly(0.6 * x[3528:] + noise, 320, 441).astype(np.float32), 16000)
    original_hash = extract(IngestItem(piece.path, TrackMeta()), PARAMS, 3600).content_hash
    assert extract(IngestItem(shifted, TrackMeta()), PARAMS, 3600).content_hash != original_hash
    with Store(store_copy, PARAMS) as store:
        tid = _id_of(store, piece.path)
        before = store.info().tracks
        items = [IngestItem(p, TrackMeta()) for p in (resampled, flac, shifted)]
        report = ingest(store, items, processes=1)
        assert report.added == [] and report.failures == []
        assert sorted(report.duplicates) == sorted((str(p), tid) for p in (resampled, flac, shifted))
        assert store.info().tracks == before
    # A different piece of the same length is no duplicate.
    other = tmp_path / "other.wav"
    write_wav(other, compose_piece(777, 40.0, 22050), 22050)
    with Store(store_copy, PARAMS) as store:
        report = ingest(store, [IngestItem(other, TrackMeta())], processes=1)
        assert len(report.added) == 1 and report.duplicates == []


def test_catalog_round_trips_track_meta(tmp_path: Path) -> None:
    meta = TrackMeta(
        title="Ünïcode – Title",
        artist="Artist",
        album="Album",
        release_date="2021-10",
        label="Label",
        isrc="XXSM12100003",
        upc="860001234589",
        lyrics="la la\nla",
        audio_id=42,
        external={
            "musicbrainz_recording_id": "0f7c7c4e-1c1e-4f7b-9d7a-2f7d5c8a1b2c",
            "spotify_id": "4uLU6hMCjMI75M1A2tKUQC",
            "spotify": '{"id": "4uLU6hMCjMI75M1A2tKUQC", "popularity": 3}',
            "empty": "",
        },
    )
    rng = np.random.default_rng(1)
    track = NewTrack(
        meta,
        123.5,
        "/music/x.flac",
        "deadbeef",
        rng.integers(0, 2**32, 20, dtype=np.uint64).astype(np.uint32),
        np.arange(20, dtype=np.int32),
        np.zeros((0, 2), np.int32),
    )
    db = tmp_path / "db"
    with Store(db, PARAMS, create=True) as store, store.writer() as w:
        (tid,) = w.commit([track, dataclasses.replace(track, meta=TrackMeta(), content_hash="other")])[:1]
    stored_meta = dataclasses.replace(meta, external={k: v for k, v in meta.external.items() if v})
    with Store(db, PARAMS) as store:
        got = store.catalog.get_track(tid)
        assert got is not None
        assert got.meta == stored_meta
        assert (got.duration, got.source, got.content_hash, got.n_hashes) == (
            123.5,
            "/music/x.flac",
            "deadbeef",
            20,
        )
        assert store.catalog.find_by_audio_id(42) == tid
        assert store.catalog.find_by_hash("deadbeef") == tid
        assert [t.id for t in store.catalog.list_tracks()] == [tid, tid + 1]
        assert store.catalog.get_track(tid + 1).meta == TrackMeta()
        with store.writer() as w:
            w.update_meta(tid, TrackMeta(title="New", external={"deezer_id": "9"}))
        assert store.catalog.get_track(tid).meta == TrackMeta(title="New", external={"deezer_id": "9"})
    conn = sqlite3.connect(f"file:{db / CATALOG_FILE}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT key, value FROM track_external").fetchall() == [("deezer_id", "9")]
    finally:
        conn.close()


# --- known source files -----------------------------------------------------------------------


def test_resumed_add_skips_unchanged_files_without_decoding(store_copy: Path, pieces: list, tmp_path: Path) -> None:
    """A re-run skips files already stored by path + size + mtime before opening them: a file
    overwritten with same-size garbage and its mtime put back is still "known" — decoding it
    would have failed — while any visible change (size, mtime) has the file examined again."""
    victim = tmp_path / "victim.wav"
    shutil.copy(pieces[0].path, victim)
    with Store(store_copy, PARAMS) as store:
        tid = _id_of(store, pieces[0].path)
        # A byte-identical copy at a new path is known by its sha256, and remembered under its path.
        first = ingest(store, [IngestItem(victim, TrackMeta())], processes=1)
        assert first.known == [(str(victim), tid)] and first.added == first.duplicates == []
        st = victim.stat()
        victim.write_bytes(b"\0" * st.st_size)  # not audio any more, same size
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
        again = ingest(store, [IngestItem(victim, TrackMeta()), IngestItem(pieces[1].path, TrackMeta())], processes=1)
        assert again.failures == [] and again.duplicates == [] and again.added == []
        assert dict(again.known) == {str(victim): tid, str(pieces[1].path): _id_of(store, pieces[1].path)}
        # Changed (new mtime): examined again, and the garbage is reported as a failure.
        os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        changed = ingest(store, [IngestItem(victim, TrackMeta())], processes=1)
        assert changed.known == [] and len(changed.failures) == 1
        # Replaced by other audio: added as a new track, and known from then on.
        write_wav(victim, compose_piece(4242, 20.0, 22050), 22050)
        replaced = ingest(store, [IngestItem(victim, TrackMeta())], processes=1)
        assert len(replaced.added) == 1 and replaced.known == []
        new_id = replaced.added[0][0]
        assert ingest(store, [IngestItem(victim, TrackMeta())], processes=1).known == [(str(victim), new_id)]
        # Removing a track forgets its files: the same file is added again.
        with store.writer() as w:
            w.remove(new_id)
        back = ingest(store, [IngestItem(victim, TrackMeta())], processes=1)
        assert back.known == [] and len(back.added) == 1


def test_decoded_duplicates_are_remembered(store_copy: Path, pieces: list, tmp_path: Path) -> None:
    """A file found to be a duplicate only after decoding (a re-encode) is known on the next run,
    and so is a second copy found inside the same run."""
    flac = tmp_path / "copy.flac"
    _write_flac(flac, pieces[2].samples, 22050)
    fresh = tmp_path / "fresh.wav"
    write_wav(fresh, compose_piece(4343, 20.0, 22050), 22050)
    twin = tmp_path / "fresh-again.wav"
    write_wav(twin, compose_piece(4343, 20.0, 22050), 22050)
    twin.write_bytes(twin.read_bytes() + b"\0\0")  # other bytes, same audio
    items = [IngestItem(p, TrackMeta()) for p in (flac, fresh, twin)]
    with Store(store_copy, PARAMS) as store:
        first = ingest(store, items, processes=1)
        assert len(first.added) == 1 and len(first.duplicates) == 2
        fresh_id = first.added[0][0]
        again = ingest(store, items, processes=1)
        assert again.added == again.duplicates == again.failures == []
        assert dict(again.known) == {
            str(flac): _id_of(store, pieces[2].path),
            str(fresh): fresh_id,
            str(twin): fresh_id,
        }


def test_a_second_writer_skips_what_the_first_added(store_copy: Path, tmp_path: Path) -> None:
    """Two adds of the same new files at once: one adds them, the other (waiting for the write
    lock) finds them known and decodes nothing."""
    import threading

    files = []
    for seed in (5151, 5252):
        files.append(tmp_path / f"new-{seed}.wav")
        write_wav(files[-1], compose_piece(seed, 15.0, 22050), 22050)
    reports = []

    def run() -> None:
        with Store(store_copy, PARAMS) as store:
            reports.append(ingest(store, [IngestItem(f, TrackMeta()) for f in files], processes=1))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first, second = sorted(reports, key=lambda r: -len(r.added))
    assert len(first.added) == 2 and first.known == []
    assert second.added == second.duplicates == [] and dict(second.known) == {str(p): i for i, p in first.added}
