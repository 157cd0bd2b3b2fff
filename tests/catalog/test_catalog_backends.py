"""The catalog contract, run on both catalog backends: the embedded SQLite file and PostgreSQL
(``SOUNDMARK_CATALOG_URL``, with the index on the Redis Cluster as a shared catalog needs).

Each test drives a real ``Store`` and asserts what a user of the catalog port relies on, whatever
the engine: tracks with their metadata and external ids, ids never reused, source files, meta,
tokens and their quotas, all-or-nothing commits, and concurrent openers."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from soundmark.auth.tokens import TokenStore, month_period
from soundmark.catalog.models import SourceFile, TrackMeta
from soundmark.catalog.sql import POSTGRESQL, SQLITE
from soundmark.catalog.sqlite import Catalog
from soundmark.errors import StoreError
from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import NewTrack, Store

BACKENDS = (SQLITE, POSTGRESQL)


class Opener:
    """Opens the same store again and again (a process restarting, another node)."""

    def __init__(self, root: Path, catalog_url: str | None, index_url: str | None):
        self.root, self.catalog_url, self.index_url = root, catalog_url, index_url

    def __call__(self, node: str = "a") -> Store:
        return Store(
            self.root / node if self.catalog_url else self.root / "a",
            FingerprintParams(),
            create=True,
            index_backend="segments",  # ignored when index_url is set
            index_url=self.index_url,
            catalog_url=self.catalog_url,
        )


@pytest.fixture(params=BACKENDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == SQLITE:
        yield Opener(tmp_path, None, None)
        return
    yield Opener(tmp_path, request.getfixturevalue("pg_catalog_url"), request.getfixturevalue("shared_index_url"))


def new_track(seed: int, title: str, content_hash: str | None = None, **meta: object) -> NewTrack:
    rng = np.random.default_rng(seed)
    n = 200
    hashes = rng.integers(0, 1 << 22, n, dtype=np.uint32)
    times = np.sort(rng.integers(0, 2000, n)).astype(np.int32)
    peaks = np.stack([np.sort(rng.integers(0, 2000, 300)), rng.integers(0, 200, 300)], axis=1).astype(np.int32)
    return NewTrack(TrackMeta(title=title, **meta), 60.0, f"/music/{title}.wav", content_hash, hashes, times, peaks)  # type: ignore[arg-type]


def test_tracks_round_trip_with_metadata_and_external_ids(opener: Opener) -> None:
    with opener() as store, store.writer() as w:
        ids = w.commit([
            new_track(1, "Ünïcode – title", "h1", artist="A", isrc="XX1", external={"spotify": '{"id": "s1"}'}),
            new_track(2, "Second", "h2", artist="B", audio_id=42),
        ])  # fmt: skip
    with opener() as again:
        tracks = again.catalog.get_tracks(ids)
        assert tracks[ids[0]].meta.title == "Ünïcode – title" and tracks[ids[0]].meta.isrc == "XX1"
        assert tracks[ids[0]].meta.external == {"spotify": '{"id": "s1"}'}
        assert tracks[ids[0]].n_hashes == 200 and tracks[ids[0]].duration == 60.0
        assert again.catalog.find_by_hash("h2") == ids[1]
        assert again.catalog.find_by_audio_id(42) == ids[1]
        n, hours = again.catalog.totals()
        assert n == 2 and hours == pytest.approx(120 / 3600)
        assert [t.id for t in again.catalog.list_tracks(limit=1, offset=1)] == [ids[1]]
        assert again.index.stats().postings == 400


def test_update_and_remove(opener: Opener) -> None:
    with opener() as store:
        with store.writer() as w:
            (tid,) = w.commit([new_track(3, "Old", "h3", external={"k": "v"})])
            w.update_meta(tid, TrackMeta(title="New", artist="Z", external={"k2": "v2"}))
        track = store.catalog.get_track(tid)
        assert track is not None and track.meta.title == "New" and track.meta.external == {"k2": "v2"}
        with store.writer() as w:
            assert w.remove(tid) and not w.remove(tid)
        assert store.catalog.get_track(tid) is None and store.catalog.totals()[0] == 0


def test_track_ids_are_never_reused(opener: Opener) -> None:
    with opener() as store, store.writer() as w:
        first = w.commit([new_track(4, "One", "h4"), new_track(5, "Two", "h5")])
        w.remove(first[1])
        later = w.commit([new_track(6, "Three", "h6")])
    assert later[0] > max(first)


def test_source_files_are_remembered(opener: Opener) -> None:
    src = SourceFile("/music/a.wav", 1234, 987654321012345678, "ab" * 32)
    with opener() as store:
        with store.writer() as w:
            (tid,) = w.commit([new_track(7, "Sourced", "h7")], sources=[src])
        assert store.catalog.known_source(src.path, src.size, src.mtime_ns) == tid
        assert store.catalog.find_source_by_sha256(src.sha256) == tid
        moved = SourceFile(src.path, 99, src.mtime_ns, "cd" * 32)
        with store.writer() as w:
            w.remember_sources([(moved, tid)])
        assert store.catalog.known_source(src.path, src.size, src.mtime_ns) is None
        assert store.catalog.known_source(moved.path, 99, moved.mtime_ns) == tid


def test_a_failed_commit_leaves_nothing(opener: Opener) -> None:
    with opener() as store:
        with store.writer() as w:
            w.commit([new_track(8, "Kept", "h8")])
            with pytest.raises((StoreError, sqlite3.IntegrityError)):
                w.commit([new_track(9, "New one", "h9"), new_track(10, "Duplicate hash", "h8")])
        assert [t.meta.title for t in store.catalog.list_tracks()] == ["Kept"]
        assert store.index.stats().postings == 200


def test_meta_values_and_transactions_roll_back(opener: Opener) -> None:
    with opener() as store:
        cat = store.catalog
        with cat.transaction():
            cat.set_meta("k", "1")
            cat.set_meta("k", "2")  # an upsert
        with pytest.raises(RuntimeError), cat.transaction():
            cat.set_meta("k", "3")
            raise RuntimeError("rolled back")
        assert cat.get_meta("k") == "2" and not cat.conn.in_transaction


def test_tokens_and_quotas(opener: Opener) -> None:
    with opener() as store:
        with store.catalog.transaction() as conn:
            token, info = TokenStore(conn).create("ci", scopes={"recognize"}, limit_per_month=3)
        tokens = TokenStore(store.catalog)
        found = tokens.authenticate(token)
        assert found is not None and found.id == info.id and found.limit_per_month == 3
        period = month_period()
        assert [tokens.consume_id(info.id, period) for _ in range(4)] == [True, True, True, False]
        assert tokens.quota(info.id) == (3, False, 3)
        assert [tokens.consume_anonymous_on("10.0.0.1", "2026-12-02", 2) for _ in range(3)] == [True, True, False]
        assert tokens.revoke(info.id) and tokens.authenticate(token) is None


def test_two_openers_at_once_migrate_once(opener: Opener) -> None:
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_one(node: str) -> None:
        try:
            stores.append(opener(node))
        except BaseException as exc:  # collected and re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert not errors and len(stores) == 2


def test_writers_on_two_nodes_get_distinct_ids(opener: Opener) -> None:
    if opener.catalog_url is None:
        pytest.skip("one SQLite file has one writer at a time (the store's file lock)")
    a, b = opener("a"), opener("b")
    try:
        first_a = a.catalog.reserve_track_ids(5)
        first_b = b.catalog.reserve_track_ids(5)
        assert first_a is not None and first_b is not None
        assert set(range(first_a, first_a + 5)).isdisjoint(range(first_b, first_b + 5))
        with a.writer() as wa, b.writer() as wb:  # the two directories' locks are their own
            ida = wa.commit([new_track(11, "From A", "ha")])
            idb = wb.commit([new_track(12, "From B", "hb")])
        assert ida != idb
        b.refresh(force=True)
        assert {t.meta.title for t in b.catalog.list_tracks()} == {"From A", "From B"}
        assert b.index.stats().postings == 400
    finally:
        a.close()
        b.close()


def test_a_directory_with_a_sqlite_catalog_refuses_a_catalog_url(tmp_path: Path, pg_catalog_url: str) -> None:
    Catalog(tmp_path).close()
    with pytest.raises(StoreError, match="soundmark migrate"):
        Store(tmp_path, FingerprintParams(), create=True, index_backend="memory", catalog_url=pg_catalog_url)


def test_a_new_directory_joins_only_an_existing_store(tmp_path: Path, pg_catalog_url: str) -> None:
    with pytest.raises(StoreError, match="no soundmark store"):
        Store(tmp_path / "node", FingerprintParams(), catalog_url=pg_catalog_url)
    assert not (tmp_path / "node").exists()
