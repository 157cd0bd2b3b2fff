"""The Python API on the Redis Cluster index: ``soundmark.open(db, index_url=...)`` (a real cluster)."""

from __future__ import annotations

from pathlib import Path

import soundmark
from support import PIECE_RATE, Piece


def test_open_with_an_index_url_puts_the_index_on_the_cluster(
    pieces: list[Piece], redis_url: str, tmp_path: Path
) -> None:
    db = tmp_path / "db"
    with soundmark.open(db, index_url=redis_url) as sm:
        assert len(sm.add([p.path for p in pieces[:2]]).added) == 2
        assert sm.store.index.postings() > 0
    assert not list(db.glob("segments/seg-*")), "the postings went to the cluster, not to segment files"
    clip = pieces[1].samples[12 * PIECE_RATE : 20 * PIECE_RATE]
    with soundmark.open(db) as sm:  # the store recorded its index: no URL needed to open it again
        match = sm.recognize(clip, sample_rate=PIECE_RATE)
    assert match is not None and match.title == pieces[1].path.stem
