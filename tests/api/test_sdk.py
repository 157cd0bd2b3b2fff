"""The official `audd` Python SDK, unchanged, against a live soundmark server."""

from __future__ import annotations

import shutil
from pathlib import Path

import audd
import httpx
import pytest
from live_server import Server, update_track

from soundmark.demo import compose_piece, write_wav
from support import PIECE_RATE, Piece


def clip(piece: Piece, tmp: Path, start: float = 10.0, seconds: float = 6.0, name: str = "clip.wav") -> Path:
    path = tmp / name
    a = int(start * PIECE_RATE)
    write_wav(path, piece.samples[a : a + int(seconds * PIECE_RATE)], PIECE_RATE)
    return path


def client(server: Server, sdk_http: httpx.Client, token: str | None = None) -> audd.AudD:
    return audd.AudD(token or server.token(), httpx_client=sdk_http, max_retries=1)


def test_recognize_file_path(server: Server, sdk_http: httpx.Client, pieces: list[Piece], tmp_path: Path) -> None:
    result = client(server, sdk_http).recognize(str(clip(pieces[1], tmp_path, start=12.0)))
    assert isinstance(result, audd.RecognitionResult)
    assert result.title == pieces[1].title and result.artist == "Test Band"
    assert result.timecode == "00:12"
    assert result.song_link and result.song_link.startswith("http")
    # song_link is built from the request's Host (api.audd.io here); soundmark serves the page.
    path = httpx.URL(result.song_link).path
    page = httpx.get(server.url + path, timeout=10)
    assert page.status_code == 200 and pieces[1].title in page.text


def test_recognize_bytes(server: Server, sdk_http: httpx.Client, pieces: list[Piece], tmp_path: Path) -> None:
    data = clip(pieces[2], tmp_path).read_bytes()
    result = client(server, sdk_http).recognize(data)
    assert result is not None and result.title == pieces[2].title


def test_recognize_url(
    server: Server, sdk_http: httpx.Client, pieces: list[Piece], file_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, root = file_server
    shutil.copy(clip(pieces[3], tmp_path), root / "piece3.wav")
    result = client(server, sdk_http).recognize(f"{base}/piece3.wav")
    assert result is not None and result.title == pieces[3].title


def test_unknown_audio_is_none(server: Server, sdk_http: httpx.Client, tmp_path: Path) -> None:
    path = tmp_path / "unknown.wav"
    write_wav(path, compose_piece(4242, 6.0, PIECE_RATE), PIECE_RATE)
    assert client(server, sdk_http).recognize(str(path)) is None


def test_return_metadata_blocks(server: Server, sdk_http: httpx.Client, pieces: list[Piece], tmp_path: Path) -> None:
    # Give one track external ids through the catalog, as an operator's manifest would.
    update_track(
        server.db, pieces[4].title, isrc="GBXXX2400001",
        external={"spotify_id": "4uLU6hMCjMI75M1A2tKUQC", "deezer_id": "3135556",
                  "musicbrainz_recording_id": "8f8b6c5e-1f4e-4c55-9a0c-6a5e2b8a1f10"},
    )  # fmt: skip
    result = client(server, sdk_http).recognize(
        str(clip(pieces[4], tmp_path)), return_metadata=["spotify", "deezer", "musicbrainz", "apple_music"]
    )
    assert result is not None and result.title == pieces[4].title
    assert result.isrc == "GBXXX2400001"
    assert result.spotify is not None and result.spotify.id == "4uLU6hMCjMI75M1A2tKUQC"
    assert result.deezer is not None and result.deezer.id == 3135556
    assert result.musicbrainz and result.musicbrainz[0].id == "8f8b6c5e-1f4e-4c55-9a0c-6a5e2b8a1f10"
    assert result.apple_music is None  # no data → block left out, never half-filled


def test_custom_catalog_add_then_recognize(server: Server, sdk_http: httpx.Client, tmp_path: Path) -> None:
    piece = compose_piece(777, 30.0, PIECE_RATE)
    full = tmp_path / "custom.wav"
    write_wav(full, piece, PIECE_RATE)
    sdk = client(server, sdk_http)
    sdk.custom_catalog.add(146, str(full))
    query = tmp_path / "q.wav"
    write_wav(query, piece[int(14 * PIECE_RATE) : int(20 * PIECE_RATE)], PIECE_RATE)
    result = sdk.recognize(str(query))
    assert result is not None and result.audio_id == 146 and result.timecode == "00:14"
    # Re-uploading the same id replaces the slot instead of adding a second track.
    other = tmp_path / "other.wav"
    write_wav(other, compose_piece(778, 30.0, PIECE_RATE), PIECE_RATE)
    sdk.custom_catalog.add(146, str(other))
    assert sdk.recognize(str(query)) is None


def test_find_lyrics(server: Server, sdk_http: httpx.Client, pieces: list[Piece]) -> None:
    update_track(server.db, pieces[0].title, lyrics="Oscillate with me under the neon moon")
    hits = client(server, sdk_http).advanced.find_lyrics("neon moon")
    assert hits and hits[0].title == pieces[0].title
    assert "Oscillate" in (hits[0].lyrics or "")
    assert isinstance(hits[0].song_id, int) and hits[0].song_id > 0 and hits[0].artist_id == 0
    assert (hits[0].song_link or "").endswith(f"/song/{hits[0].song_id}")
    assert client(server, sdk_http).advanced.find_lyrics("zebra xylophone quantum") == []


def test_typed_errors(
    server: Server, strict_server: Server, sdk_http: httpx.Client, pieces: list[Piece], tmp_path: Path
) -> None:
    with pytest.raises(audd.AudDAuthenticationError) as e900:
        client(server, sdk_http, token="not-a-real-token").recognize(str(clip(pieces[0], tmp_path)))
    assert e900.value.error_code == 900

    with pytest.raises(audd.AudDInvalidAudioError) as e500:
        client(server, sdk_http).recognize(b"definitely not audio, just text" * 10)
    assert e500.value.error_code == 500

    with pytest.raises(audd.AudDInvalidRequestError) as e600:
        client(server, sdk_http).recognize("http://127.0.0.1:9/missing.mp3")
    assert e600.value.error_code == 600

    with pytest.raises(audd.AudDInvalidRequestError) as e700:
        client(server, sdk_http).recognize(b"", extra_parameters={})
    assert e700.value.error_code == 700

    strict_http = httpx.Client(transport=sdk_http._transport, timeout=60)  # type: ignore[attr-defined]
    strict_http._transport.target = httpx.URL(strict_server.url)  # type: ignore[attr-defined]
    big = tmp_path / "big.wav"
    write_wav(big, compose_piece(5, 40.0, 22050), 22050)  # ~1.7 MB > the strict server's 1 MB cap
    with pytest.raises(audd.AudDInvalidAudioError) as e400:
        audd.AudD(strict_server.token(), httpx_client=strict_http, max_retries=1).recognize(str(big))
    assert e400.value.error_code == 400

    # Without a token: two anonymous requests a day, then 901.
    anon = httpx.Client(timeout=60)
    small = clip(pieces[0], tmp_path, name="small.wav").read_bytes()
    codes = []
    for _ in range(3):
        body = anon.post(strict_server.url + "/", files={"file": ("a.wav", small)}).json()
        codes.append(body.get("error", {}).get("error_code") if body["status"] == "error" else 0)
    anon.close()
    strict_http.close()
    assert codes == [0, 0, 901]
