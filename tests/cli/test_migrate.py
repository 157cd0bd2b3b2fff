"""soundmark migrate: an embedded store copied into PostgreSQL + the Redis Cluster, resumably.

Real servers throughout (the ``pg_catalog_url`` / ``shared_index_url`` fixtures): the copy is
checked by what users do with it — ``soundmark recognize`` on the new node directory, tokens
authenticating, long-poll events — and an interrupted run (stopped by the use case's progress
callback after its first batch, or leaving an unpublished index write as a killed process does)
must end identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from servers import delete_prefix, drop_schema
from soundmark.auth.tokens import TokenStore
from soundmark.catalog.models import TrackMeta
from soundmark.catalog.sql import PgConnection
from soundmark.demo import write_wav
from soundmark.ingest import IngestItem, ingest
from soundmark.migrate import MigrateProgress, migrate
from soundmark.migrate.source import SourceStore
from soundmark.migrate.verify import NO_CAP
from soundmark.store import Store, recorded_params
from soundmark.streams.registry import StreamStore, longpoll_category, token_md5
from support import PIECE_RATE, Piece

EXE = [sys.executable, "-m", "soundmark"]
CLIPS = ((0, 5.0), (2, 12.0), (4, 21.0))  # (piece, start second) of the recognized clips


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOUNDMARK_DB", "SOUNDMARK_CATALOG_URL")}
    env.pop("SOUNDMARK_INDEX_URL", None)
    proc = subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=300, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def source(store_copy: Path) -> dict[str, Any]:
    """The session store with accounts and stream history added: a token with usage, a stream
    with a callback URL, a result event (which writes a play) and a notification."""
    with Store(store_copy, recorded_params(store_copy)) as s:
        tokens = TokenStore(s.catalog)
        secret, info = tokens.create("radio-co", limit_per_month=1000)
        assert tokens.consume(info, 7)
    streams = StreamStore(store_copy)
    try:
        md5 = token_md5(secret)
        streams.set_callback_url(info.id, md5, "https://example.org/hook?secret=1")
        streams.add_stream(info.id, md5, 5, "https://radio.example.org/live", None)
        song = {"title": "Piece 11", "artist": "Test Band", "song_link": "https://x.example/song/1", "score": 90}
        result = {"result": {"radio_id": 5, "timestamp": "2026-12-01 10:00:00", "play_length": 40, "results": [song]}}
        streams.add_event(info.id, 5, longpoll_category(md5, 5), "result", result)
        streams.add_event(info.id, 5, longpoll_category(md5, 5), "notification", {"notification": {"code": 0}})
    finally:
        streams.close()
    return {"db": store_copy, "secret": secret, "token_id": info.id, "category": longpoll_category(md5, 5)}


@pytest.fixture()
def other_backends(backend_servers: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A second catalog schema and index prefix (for a run to compare against)."""
    schema, prefix = f"t_{uuid.uuid4().hex[:12]}", f"test-{uuid.uuid4().hex[:12]}"
    pg, redis = backend_servers["SOUNDMARK_TEST_POSTGRES_URL"], backend_servers["SOUNDMARK_TEST_REDIS_URL"]
    yield f"{pg}?schema={schema}", f"{redis}/{prefix}"
    drop_schema(pg, schema)
    delete_prefix(redis, prefix)


def _migrate_cli(db: Path, node: Path, catalog: str, index: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["migrate", "--db", str(db), "--to", str(node), "--catalog-url", catalog, "--index-url", index]
    return run(*args, *extra, check=False)


def _clips(pieces: list[Piece], tmp: Path) -> list[Path]:
    out = []
    for i, start in CLIPS:
        path = tmp / f"clip-{i}.wav"
        s = int(start * PIECE_RATE)
        write_wav(path, pieces[i].samples[s : s + 6 * PIECE_RATE], PIECE_RATE)
        out.append(path)
    return out


def _recognized(db: Path, clips: list[Path]) -> dict[str, tuple[str, float]]:
    out = run("recognize", "--db", str(db), "--json", *map(str, clips))
    found = {}
    for line in out.stdout.splitlines():
        obj = json.loads(line)
        assert obj["status"] == "success" and obj["result"] is not None, obj
        found[Path(obj["file"]).name] = (obj["result"]["title"], round(float(obj["result"]["offset"]), 1))
    return found


def _source_digest(db: Path) -> str:
    """Every row of the source catalog and every byte of its segments."""
    h = hashlib.sha256()
    conn = sqlite3.connect(f"file:{db / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        for line in conn.iterdump():
            h.update(line.encode())
    finally:
        conn.close()
    for path in sorted((db / "segments").rglob("*")):
        if path.is_file():
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_migrate_cli_serves_the_same_catalog(
    source: dict[str, Any], pieces: list[Piece], pg_catalog_url: str, shared_index_url: str, tmp_path: Path
) -> None:
    db, node = source["db"], tmp_path / "node"
    before = _source_digest(db)
    out = _migrate_cli(db, node, pg_catalog_url, shared_index_url, "--batch", "2", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["verification"]["ok"], report
    assert report["tracks"] == {
        "total": len(pieces),
        "copied": len(pieces),
        "skipped": 0,
        "postings": report["verification"]["postings"][0],
    }
    assert report["tables"]["tokens"] == 1 and report["tables"]["stream_events"] == 2
    assert set(report["not_copied"]) >= {"web_sessions", "jobs"}
    assert _source_digest(db) == before, "the source changed"
    assert (node / "catalog.url").exists() and not (node / "catalog.sqlite").exists()

    again = json.loads(_migrate_cli(db, node, pg_catalog_url, shared_index_url, "--json").stdout)
    assert again["tracks"] == {"total": len(pieces), "copied": 0, "skipped": len(pieces), "postings": 0}
    assert again["verification"]["ok"] and again["tables"] == report["tables"]

    clips = _clips(pieces, tmp_path)
    on_source, on_target = _recognized(db, clips), _recognized(node, clips)
    assert on_target == on_source
    assert on_target["clip-2.wav"] == (pieces[2].title, 12.0)

    with Store(node, recorded_params(node)) as target:
        tokens = TokenStore(target.catalog)
        info = tokens.authenticate(source["secret"])
        assert info is not None and info.id == source["token_id"] and info.name == "radio-co"
        assert info.used_this_month == 7 and info.limit_per_month == 1000
        assert tokens.consume(info)  # counting goes on where the source left it
        assert tokens.get(info.id).used_this_month == 8  # type: ignore[union-attr]
        _, fresh = tokens.create("new-client")  # the identity sequence moved past the copied id
        assert fresh.id > source["token_id"]
        play = target.catalog.conn.execute("SELECT track_id, title, play_length FROM plays").fetchall()
        assert [tuple(r) for r in play] == [(1, "Piece 11", 40)]
        owner = target.catalog.conn.execute("SELECT owner, lease_until, running FROM streams").fetchone()
        assert owner[0] is None and owner[1] == 0
    streams = StreamStore(node)
    try:
        event, _ = streams.poll(source["category"], 0)  # long-poll clients find the copied events
        assert event is not None and event.kind == "result" and event.payload["result"]["play_length"] == 40  # type: ignore[index]
        assert streams.callback_url(source["token_id"]) == "https://example.org/hook?secret=1"
    finally:
        streams.close()


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The target catalog's rows that a migration writes (ids included; generated bookkeeping not)."""
    queries = {
        "tracks": "SELECT * FROM tracks ORDER BY id",
        "track_external": "SELECT * FROM track_external ORDER BY track_id, key",
        "source_files": "SELECT * FROM source_files ORDER BY path",
        "tokens": "SELECT * FROM tokens ORDER BY id",
        "token_usage": "SELECT * FROM token_usage ORDER BY token_id, period",
        "stream_accounts": "SELECT * FROM stream_accounts ORDER BY token_id",
        "streams": "SELECT * FROM streams ORDER BY id",
        "plays": "SELECT * FROM plays ORDER BY id",
        "stream_events": "SELECT * FROM stream_events ORDER BY id",
        "id_blocks": "SELECT * FROM id_blocks",
        "index": "SELECT track_id, postings, removed FROM redis_index_tracks ORDER BY track_id",
    }
    conn = PgConnection(url, readonly=True)
    try:
        return {name: [tuple(r) for r in conn.execute(sql).fetchall()] for name, sql in queries.items()}
    finally:
        conn.close()


def _answers(node: Path, hashes: np.ndarray) -> np.ndarray:
    with Store(node, recorded_params(node)) as s:
        hits = s.index.lookup(hashes, NO_CAP)
    rows = np.stack([hashes[hits.hash_pos].astype(np.int64), hits.track_ids, hits.times], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


class _Stop(Exception):
    pass


def test_an_interrupted_migrate_resumes_and_ends_identical(
    source: dict[str, Any], pg_catalog_url: str, shared_index_url: str, other_backends: tuple[str, str], tmp_path: Path
) -> None:
    db = source["db"]
    whole = migrate(db, tmp_path / "whole", catalog_url=other_backends[0], index_url=other_backends[1])
    assert whole.verification.ok

    def stop_after_first_batch(p: MigrateProgress) -> None:
        if p.stage == "tracks" and p.done > 0:
            raise _Stop

    node = tmp_path / "node"
    with pytest.raises(_Stop):
        migrate(
            db,
            node,
            catalog_url=pg_catalog_url,
            index_url=shared_index_url,
            batch_tracks=2,
            progress=stop_after_first_batch,
        )
    half = _dump(pg_catalog_url)
    assert [r[0] for r in half["tracks"]] == [1, 2] and half["tokens"] == []

    # A process killed between its index write and its commit leaves an unpublished write of
    # the next tracks in the cluster: the resumed run must neither see it nor trip over it.
    with SourceStore(db) as src, Store(node, src.params) as target, target.writer() as w:
        w.index.write(list(src.reader.read_tracks([3, 4], 1 << 20)))

    resumed = migrate(db, node, catalog_url=pg_catalog_url, index_url=shared_index_url, batch_tracks=2)
    assert resumed.verification.ok, resumed.verification
    assert resumed.tracks.copied == 4 and resumed.tracks.skipped == 2
    a, b = _dump(pg_catalog_url), _dump(other_backends[0])
    assert a == b
    with SourceStore(db) as src:
        hashes = np.unique(np.concatenate([tp.hashes for tp in src.reader.read_tracks(src.track_ids(), 1 << 20)]))
    assert len(hashes) > 1000
    assert np.array_equal(_answers(node, hashes), _answers(tmp_path / "whole", hashes))


def test_migrate_refuses_a_catalog_of_another_store(
    source: dict[str, Any], pg_catalog_url: str, shared_index_url: str, tmp_path: Path
) -> None:
    with Store(tmp_path / "other", recorded_params(source["db"]), create=True) as s:
        TokenStore(s.catalog).create("someone")
    node = tmp_path / "node"
    first = migrate(tmp_path / "other", node, catalog_url=pg_catalog_url, index_url=shared_index_url)
    assert first.tracks.total == 0 and first.tables["tokens"] == 1 and first.verification.ok
    out = _migrate_cli(source["db"], tmp_path / "node2", pg_catalog_url, shared_index_url)
    assert out.returncode == 1 and "was migrated from" in out.stderr and str(tmp_path / "other") in out.stderr
    missing = run("migrate", "--db", str(source["db"]), "--to", str(tmp_path / "n3"), check=False)
    assert missing.returncode == 1 and "catalog URL" in missing.stderr
    same = _migrate_cli(source["db"], source["db"], pg_catalog_url, shared_index_url)
    assert same.returncode == 1 and "is the source store" in same.stderr


@pytest.mark.parametrize("max_postings", [1_000, 7_000, 1 << 20])
def test_read_tracks_gives_back_what_was_written(built_store: Path, max_postings: int) -> None:
    """Windows smaller than a track, spanning several tracks, and the whole segment at once all
    read each track's postings and peaks back exactly (compared with the compaction's reader)."""
    with Store(built_store, recorded_params(built_store)) as s, SourceStore(built_store) as src:
        expected = {}
        for name in s.index.names:  # type: ignore[attr-defined]
            for tp in s.index.read_postings(name, np.zeros(0, np.int64)):  # type: ignore[attr-defined]
                expected[tp.track_id] = tp
        ids = src.track_ids()
        got = {tp.track_id: tp for tp in src.reader.read_tracks([*ids[::-1], 999_999], max_postings)}
    assert set(got) == set(ids) == set(expected)
    for tid, want in expected.items():
        have = got[tid]
        a, b = np.lexsort((want.times, want.hashes)), np.lexsort((have.times, have.hashes))
        assert len(have.hashes) > 1000
        assert np.array_equal(want.hashes[a], have.hashes[b]) and np.array_equal(want.times[a], have.times[b])
        assert np.array_equal(want.peaks, have.peaks)


def test_ids_of_removed_tracks_are_never_handed_out_again(
    store_copy: Path, unknown_piece: np.ndarray, pg_catalog_url: str, shared_index_url: str, tmp_path: Path
) -> None:
    """A track removed from the source leaves a gap that the copy keeps, and the cluster's next
    track gets an id above every id the source ever used (its own or a deleted one)."""
    with Store(store_copy, recorded_params(store_copy)) as s, s.writer() as w:
        assert w.remove(3) and w.remove(6)  # 6 is the highest id: AUTOINCREMENT never gives it again
    node = tmp_path / "node"
    out = _migrate_cli(store_copy, node, pg_catalog_url, shared_index_url)
    assert out.returncode == 0, out.stderr
    assert "copied 4 tracks" in out.stdout and "ok: serve the cluster" in out.stdout
    wav = tmp_path / "new.wav"
    write_wav(wav, unknown_piece, PIECE_RATE)
    with Store(node, recorded_params(node)) as target:
        report = ingest(target, [IngestItem(wav, TrackMeta(title="Added on the cluster"))], processes=1)
        ids = [t.id for t in target.catalog.list_tracks()]
    assert report.added and ids == [1, 2, 4, 5, 7]
    assert _recognized(node, [wav])["new.wav"][0] == "Added on the cluster"


KILL_AFTER_FIRST_BATCH = """
import os, signal, sys
from soundmark.migrate import migrate

def die(p):
    if p.stage == "tracks" and p.done > 0:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no rollback handlers: a real crash

migrate(sys.argv[1], sys.argv[2], catalog_url=sys.argv[3], index_url=sys.argv[4], batch_tracks=2, progress=die)
"""


def test_a_killed_migrate_resumes_from_the_cli(
    source: dict[str, Any], pg_catalog_url: str, shared_index_url: str, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    args = [str(source["db"]), str(node), pg_catalog_url, shared_index_url]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_BATCH, *args], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert [r[0] for r in _dump(pg_catalog_url)["tracks"]] == [1, 2]
    out = _migrate_cli(source["db"], node, pg_catalog_url, shared_index_url, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["tracks"]["skipped"] == 2 and report["tracks"]["copied"] == 4
    assert report["verification"]["ok"] and report["verification"]["tables"]["tokens"] == [1, 1]
