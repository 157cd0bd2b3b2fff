"""POST /explain on a live server: the picture (PNG, SVG), the evidence (JSON), AudD's errors,
the quota spent like recognize."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import live_server
import numpy as np
import pytest
from live_server import Server
from matplotlib.image import imread

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece


def _wav(samples: np.ndarray, tmp: Path, name: str) -> bytes:
    write_wav(tmp / name, samples, PIECE_RATE)
    return (tmp / name).read_bytes()


def _noisy_clip(piece: Piece, tmp: Path, start: float, seconds: float = 8.0) -> bytes:
    a = int(start * PIECE_RATE)
    x = piece.samples[a : a + int(seconds * PIECE_RATE)]
    noise = np.random.default_rng(piece.seed).standard_normal(len(x)).astype(np.float32) * 0.4 * float(np.std(x))
    return _wav((x + noise).astype(np.float32), tmp, f"explain-{piece.seed}-{start}.wav")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explain")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token("explain-tests")


@pytest.fixture(scope="module")
def clip(pieces: list[Piece], tmp: Path) -> bytes:
    return _noisy_clip(pieces[5], tmp, 16.0)


def _error(resp: httpx.Response, code: int) -> dict[str, object]:
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert body["status"] == "error" and body["error"]["error_code"] == code, body
    assert body["error"]["error_message"].startswith("Recognition failed: ")
    assert {"request_params", "request_api_method", "request_http_method"} <= set(body)
    return body  # type: ignore[no-any-return]


def test_png_picture_of_a_match(server: Server, http: httpx.Client, token: str, clip: bytes) -> None:
    resp = http.post(server.url + "/explain", data={"api_token": token}, files={"file": ("c.wav", clip)})
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/png", resp.text[:300]
    img = imread(io.BytesIO(resp.content), format="png")
    assert img.shape[0] >= 500 and img.shape[1] >= 800 and img[..., :3].std() > 0.05


def test_svg_picture_and_json_evidence(
    server: Server, http: httpx.Client, token: str, clip: bytes, pieces: list[Piece]
) -> None:
    resp = http.post(
        server.url + "/explain", data={"api_token": token, "format": "svg"}, files={"file": ("c.wav", clip)}
    )
    assert resp.headers["content-type"].startswith("image/svg+xml"), resp.text[:300]
    ids = {el.attrib.get("id") for el in ET.fromstring(resp.content).iter()}
    assert {"query-peaks", "reference-peaks", "agreeing-peaks", "offset-histogram", "winning-bin"} <= ids

    resp = http.post(
        server.url + "/explain", params={"api_token": token, "format": "json"}, files={"file": ("c.wav", clip)}
    )
    body = resp.json()
    assert body["status"] == "success", body
    e = body["result"]
    assert e["matched"] and e["best"]["title"] == pieces[5].title and e["best"]["verdict"] == "match"
    assert abs(e["best"]["offset_seconds"] - 16.0) < 0.5
    assert e["histogram"]["winner_votes"] == e["best"]["votes"]
    # The same clip through recognize: the same track, the same score.
    found = http.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip)}).json()["result"]
    assert found["title"] == e["best"]["title"] and abs(found["score"] - e["best"]["score"]) < 0.06


def test_url_and_a_miss_with_reasons(
    server: Server, http: httpx.Client, token: str, unknown_piece: np.ndarray, file_server: tuple[str, Path], tmp: Path
) -> None:
    base, root = file_server
    (root / "explain-unknown.wav").write_bytes(_wav(unknown_piece[5 * PIECE_RATE : 13 * PIECE_RATE], tmp, "u.wav"))
    resp = http.post(
        server.url + "/explain", data={"api_token": token, "url": f"{base}/explain-unknown.wav", "format": "json"}
    )
    e = resp.json()["result"]
    assert not e["matched"] and e["candidates"]
    for c in e["candidates"]:
        assert c["verdict"] in ("below min votes", "below the score threshold", "lost verification") and c["reason"]
    resp = http.post(server.url + "/explain", data={"api_token": token, "url": f"{base}/explain-unknown.wav"})
    assert resp.headers["content-type"] == "image/png" and imread(io.BytesIO(resp.content), format="png").std() > 0.05


def test_bad_input_gets_audd_errors(server: Server, http: httpx.Client, token: str, clip: bytes, tmp: Path) -> None:
    url = server.url + "/explain"
    _error(http.post(url, data={"api_token": token}), 700)
    _error(http.post(url, data={"api_token": token}, files={"file": ("a.wav", b"not audio\n" * 50)}), 500)
    short = _wav(np.zeros(int(0.3 * PIECE_RATE), dtype=np.float32) + 0.1, tmp, "short.wav")
    _error(http.post(url, data={"api_token": token}, files={"file": ("s.wav", short)}), 300)
    body = _error(
        http.post(url, data={"api_token": "wrongTOKENvalue0123456789z"}, files={"file": ("c.wav", clip)}), 900
    )
    assert body["request_params"] == {"api_token": "w***z"}
    body = _error(http.post(url, data={"api_token": token, "format": "gif"}, files={"file": ("c.wav", clip)}), 50)
    assert "format" in body["error"]["error_message"]
    port = live_server.free_port()
    _error(http.post(url, data={"api_token": token, "url": f"http://127.0.0.1:{port}/a.wav"}), 600)


def test_oversize_upload_is_refused(strict_server: Server, http: httpx.Client) -> None:
    token = strict_server.token("explain-strict")
    big = b"RIFF" + b"\x01" * (1536 * 1024)  # past the strict server's 1 MB cap
    _error(http.post(strict_server.url + "/explain", data={"api_token": token}, files={"file": ("b.wav", big)}), 400)


def test_explain_spends_the_quota_like_recognize(server: Server, http: httpx.Client, clip: bytes) -> None:
    limited = server.token("explain-limited", "--limit-per-month", "2")
    files = {"file": ("c.wav", clip)}
    assert http.post(server.url + "/explain", data={"api_token": limited}, files=files).status_code == 200
    assert http.post(server.url + "/", data={"api_token": limited}, files=files).json()["status"] == "success"
    _error(http.post(server.url + "/explain", data={"api_token": limited}, files=files), 902)
    _error(http.post(server.url + "/", data={"api_token": limited}, files=files), 902)


def test_explain_is_documented(server: Server, http: httpx.Client) -> None:
    doc = http.get(server.url + "/openapi.json").json()
    op = doc["paths"]["/explain"]["post"]
    assert op["operationId"] == "explain"
    assert {"image/png", "image/svg+xml", "application/json"} <= set(op["responses"]["200"]["content"])
