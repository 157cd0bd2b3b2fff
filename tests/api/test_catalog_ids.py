"""Custom-catalog ids end to end, with the official SDK against a live server: a re-uploaded
audio_id stays recognisable (track ids are never reused), and one recording under several
audio_ids is still recognised, the copies listed beside the best."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import audd
import httpx
import pytest
from live_server import HostRewrite, Server, start_server, stop_server

from soundmark.demo import compose_piece, write_wav
from support import PIECE_RATE, Piece


@pytest.fixture(scope="module")
def ids_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: these tests change which audio sits under which audio_id."""
    root = tmp_path_factory.mktemp("catalog-ids")
    shutil.copytree(built_store, root / "db")
    s = start_server(root / "db", root / "server.log", "--anonymous-per-day", "1000")
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def token(ids_server: Server) -> str:
    return ids_server.token()


@pytest.fixture()
def sdk(ids_server: Server, token: str) -> Iterator[audd.AudD]:
    client = httpx.Client(transport=HostRewrite(ids_server.url), timeout=120)
    yield audd.AudD(token, httpx_client=client, max_retries=1)
    client.close()


def _cut(samples: object, path: Path, start: float, seconds: float) -> Path:
    a = int(start * PIECE_RATE)
    write_wav(path, samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE)  # type: ignore[index]
    return path


def test_re_uploading_an_audio_id_keeps_it_recognisable(sdk: audd.AudD, tmp_path: Path) -> None:
    song = compose_piece(9146, 30.0, PIECE_RATE)
    full = tmp_path / "song.wav"
    write_wav(full, song, PIECE_RATE)
    query = _cut(song, tmp_path / "q.wav", 12.0, 6.0)
    for _ in range(3):  # the second upload used to get the id of the first, tombstoned, track
        sdk.custom_catalog.add(146, str(full))
        result = sdk.recognize(str(query))
        assert result is not None and result.audio_id == 146 and result.timecode == "00:12"
    # Another recording under the same id replaces it; the first is then unknown.
    other = compose_piece(9147, 30.0, PIECE_RATE)
    write_wav(full, other, PIECE_RATE)
    sdk.custom_catalog.add(146, str(full))
    assert sdk.recognize(str(query)) is None
    result = sdk.recognize(str(_cut(other, tmp_path / "q2.wav", 8.0, 6.0)))
    assert result is not None and result.audio_id == 146


def test_one_recording_under_several_audio_ids(
    sdk: audd.AudD, ids_server: Server, token: str, pieces: list[Piece], tmp_path: Path
) -> None:
    piece = pieces[3]  # already in the catalog (added by `soundmark add`), now uploaded 3 times more
    for audio_id in (301, 302, 303):
        sdk.custom_catalog.add(audio_id, str(piece.path))
    query = _cut(piece.samples, tmp_path / "q.wav", 20.0, 7.0)
    result = sdk.recognize(str(query))
    assert result is not None and result.title == piece.title and result.timecode == "00:20"
    # Every copy is a match: the best first, then the three uploads.
    with open(query, "rb") as fh:
        body = httpx.post(
            ids_server.url + "/", data={"api_token": token, "all": "true"}, files={"file": fh}, timeout=60
        ).json()
    assert body["status"] == "success"
    assert body["result"][0]["title"] == piece.title
    assert sorted(m.get("audio_id") for m in body["result"][1:]) == [301, 302, 303]
    # The enterprise endpoint finds it in every 12 s chunk of the whole file, each chunk listing
    # the best and then the copies.
    by_chunk: dict[str, list[audd.EnterpriseMatch]] = {}
    for m in sdk.recognize_enterprise(str(piece.path)):
        by_chunk.setdefault(m.timecode, []).append(m)
    assert sorted(by_chunk) == ["00:00", "00:12", "00:24", "00:36"]
    for songs in by_chunk.values():
        assert songs[0].title == piece.title
        assert sorted(m.audio_id for m in songs[1:]) == [301, 302, 303]
