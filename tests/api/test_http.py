"""The AudD-compatible HTTP API with a plain HTTP client: request forms, results, errors, quotas, SSRF."""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import live_server
import pytest
from live_server import Server

from soundmark.demo import compose_piece, write_wav
from soundmark.net import is_public_ip
from support import PIECE_RATE, Piece

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "audd-reference" / "fixtures"
RESULT_KEYS = {"artist", "title", "album", "release_date", "label", "timecode", "song_link"}


def _fixture_keys(name: str) -> tuple[set[str], set[str]]:
    path = FIXTURES / name
    if path.exists():
        body = json.loads(path.read_text())
        return set(body), set(body["error"])
    # The reference copy is outside the repository; these are its keys (error_700_no_file.json).
    top = {"status", "error", "request_params", "request_api_method", "request_http_method",
           "see api documentation", "contact us"}  # fmt: skip
    return top, {"error_code", "error_message"}


def wav(samples: object, tmp: Path, name: str) -> bytes:
    path = tmp / name
    write_wav(path, samples, PIECE_RATE)  # type: ignore[arg-type]
    return path.read_bytes()


def clip_of(piece: Piece, tmp: Path, start: float = 10.0, seconds: float = 6.0) -> bytes:
    a = int(start * PIECE_RATE)
    return wav(piece.samples[a : a + int(seconds * PIECE_RATE)], tmp, f"clip-{piece.seed}-{start}-{seconds}.wav")


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("http")


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token("http-tests")


@pytest.fixture(scope="module")
def strict_token(strict_server: Server) -> str:
    return strict_server.token("http-strict")


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def hosted(pieces: list[Piece], file_server: tuple[str, Path], tmp: Path) -> tuple[str, Piece]:
    """A clip of pieces[1] on the loopback file server: (its URL, the piece)."""
    base, root = file_server
    (root / "http-clip.wav").write_bytes(clip_of(pieces[1], tmp, start=15.0))
    return f"{base}/http-clip.wav", pieces[1]


@pytest.fixture(scope="module")
def clip2(pieces: list[Piece], tmp: Path) -> bytes:
    return clip_of(pieces[2], tmp, start=8.0)


def ok_list(resp: httpx.Response) -> list[dict[str, object]]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "success" and isinstance(body["result"], list), body
    return body["result"]  # type: ignore[no-any-return]


def ok_result(resp: httpx.Response) -> dict[str, object]:
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "success", body
    assert isinstance(body["result"], dict), body
    return body["result"]


def assert_error(resp: httpx.Response, code: int, http_method: str | None = None) -> dict[str, object]:
    """AudD's error envelope, exactly: the fixtures' keys, HTTP 200, the given code."""
    assert resp.status_code == 200, resp.text
    body = resp.json()
    top, inner = _fixture_keys("error_700_no_file.json")
    assert (top, inner) == _fixture_keys("error_900_invalid_token.json")
    assert set(body) == top, body
    assert set(body["error"]) == inner
    assert body["status"] == "error"
    assert body["error"]["error_code"] == code, body
    assert isinstance(body["error"]["error_message"], str) and body["error"]["error_message"]
    assert isinstance(body["request_params"], dict)
    assert all(isinstance(v, str) for v in body["request_params"].values())
    # A self-hosted server names its own documentation and operator, never AudD's (defaults).
    here = f"{resp.request.url.scheme}://{resp.request.url.netloc.decode()}"
    assert body["see api documentation"] == here + "/docs"
    assert body["contact us"] == "the operator of this server"
    if http_method:
        assert body["request_http_method"] == http_method
    return body


def masked(token: str) -> str:
    return f"{token[0]}***{token[-1]}"


# --- request forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/recognize", "/recognize/", "/RECOGNIZE/"])
def test_get_with_url(server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], path: str) -> None:
    url, piece = hosted
    result = ok_result(http.get(server.url + path, params={"url": url, "api_token": token}))
    assert result["title"] == piece.title and result["artist"] == "Test Band"
    assert result["timecode"] == "00:15"


def test_method_param_on_root(server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece]) -> None:
    url, piece = hosted
    resp = http.get(server.url + "/", params={"method": "recognize", "url": url, "api_token": token})
    assert ok_result(resp)["title"] == piece.title
    resp = http.post(server.url + "/", data={"method": "findLyrics", "api_token": token})
    assert assert_error(resp, 50, "POST")["request_api_method"] == "findLyrics"


def test_post_multipart_file(server: Server, http: httpx.Client, token: str, clip2: bytes, pieces: list[Piece]) -> None:
    resp = http.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip2, "audio/wav")})
    result = ok_result(resp)
    assert set(result) >= RESULT_KEYS
    assert result["title"] == pieces[2].title and result["timecode"] == "00:08"
    assert isinstance(result["score"], float | int) and result["score"] > 0
    assert all(isinstance(result[k], str) for k in RESULT_KEYS)


def test_post_urlencoded(server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece]) -> None:
    url, piece = hosted
    resp = http.post(server.url + "/recognize/", data={"url": url, "api_token": token})
    assert ok_result(resp)["title"] == piece.title


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/json"])
def test_post_json_object(
    server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], ctype: str | None
) -> None:
    url, piece = hosted
    headers = {"Content-Type": ctype} if ctype else {}
    body = json.dumps({"url": url, "api_token": token, "return": "spotify"}).encode()
    req = http.build_request("POST", server.url + "/", content=body, headers=headers)
    if ctype is None:
        assert "content-type" not in req.headers
    assert ok_result(http.send(req))["title"] == piece.title


def test_params_mixed_between_query_and_body(
    server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], clip2: bytes, pieces: list[Piece]
) -> None:
    url, piece = hosted
    # token in the query, url in an urlencoded body
    resp = http.post(server.url + "/", params={"api_token": token}, data={"url": url})
    assert ok_result(resp)["title"] == piece.title
    # token in a JSON body, return in the query
    resp = http.post(
        server.url + "/", params={"return": "deezer"}, content=json.dumps({"api_token": token, "url": url})
    )
    assert ok_result(resp)["title"] == piece.title
    # token in the query, file in a multipart body, method in the body
    resp = http.post(
        server.url + "/", params={"api_token": token}, data={"method": "recognize"}, files={"file": ("x", clip2)}
    )
    assert ok_result(resp)["title"] == pieces[2].title
    # every parameter in the query of a POST with no body (DrKain's client)
    resp = http.post(server.url + "/", params={"api_token": token, "url": url})
    assert ok_result(resp)["title"] == piece.title


def test_base64_audio(server: Server, http: httpx.Client, token: str, clip2: bytes, pieces: list[Piece]) -> None:
    std = base64.b64encode(clip2).decode()
    urlsafe = base64.urlsafe_b64encode(clip2).decode().rstrip("=")
    assert "+" in std or "/" in std
    forms = [
        ("form", std),
        ("form", "data:audio/wav;base64," + std),
        ("json", urlsafe),
        ("json", "data:audio/wav;base64," + std),
        ("form", urlsafe),
    ]
    for kind, audio in forms:
        if kind == "form":
            resp = http.post(server.url + "/", data={"api_token": token, "audio": audio})
        else:
            resp = http.post(server.url + "/", content=json.dumps({"api_token": token, "audio": audio}))
        assert ok_result(resp)["title"] == pieces[2].title, (kind, audio[:30])
    # Invalid base64 is an AudD error, the audio not echoed back in full.
    resp = http.post(server.url + "/", data={"api_token": token, "audio": "!!not base64!!" * 100})
    body = assert_error(resp, 500)
    assert "!!not base64!!" not in body["request_params"]["audio"]


@pytest.mark.parametrize("ctype", ["audio/wav", "application/octet-stream"])
def test_raw_audio_body(
    server: Server, http: httpx.Client, token: str, clip2: bytes, pieces: list[Piece], ctype: str
) -> None:
    resp = http.post(server.url + "/", params={"api_token": token}, content=clip2, headers={"Content-Type": ctype})
    assert ok_result(resp)["title"] == pieces[2].title


def test_url_through_redirect_on_permissive_server(
    server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], file_server: tuple[str, Path]
) -> None:
    url, piece = hosted
    resp = http.get(server.url + "/", params={"api_token": token, "url": f"{file_server[0]}/redirect-to/{url}"})
    assert ok_result(resp)["title"] == piece.title


# --- results --------------------------------------------------------------------------------------


def test_unknown_audio_is_null(server: Server, http: httpx.Client, token: str, tmp: Path) -> None:
    data = wav(compose_piece(4343, 6.0, PIECE_RATE), tmp, "unknown.wav")
    resp = http.post(server.url + "/", data={"api_token": token}, files={"file": ("u.wav", data)})
    assert resp.status_code == 200
    assert resp.json() == {"status": "success", "result": None}


def test_song_link_page(server: Server, http: httpx.Client, token: str, clip2: bytes, pieces: list[Piece]) -> None:
    result = ok_result(http.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", clip2)}))
    link = str(result["song_link"])
    assert re.fullmatch(re.escape(server.url) + r"/song/\d+", link), link
    page = http.get(link)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert pieces[2].title in page.text
    missing = http.get(server.url + "/song/999999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert http.get(server.url + "/song/abc").status_code == 404


# --- errors ---------------------------------------------------------------------------------------


def test_error_700_no_audio(server: Server, http: httpx.Client, token: str) -> None:
    body = assert_error(http.post(server.url + "/", data={"api_token": token}), 700, "POST")
    assert body["request_params"] == {"api_token": masked(token)}
    assert body["request_api_method"] == "recognize"
    assert body["error"]["error_message"].startswith("Recognition failed: ")
    body = assert_error(http.get(server.url + "/recognize/", params={"api_token": token, "x": "1"}), 700, "GET")
    assert body["request_params"] == {"api_token": masked(token), "x": "1"}


def test_error_900_wrong_token(server: Server, http: httpx.Client, hosted: tuple[str, Piece]) -> None:
    wrong = "wrongTOKENvalue0123456789z"
    body = assert_error(http.post(server.url + "/", data={"api_token": wrong, "url": hosted[0]}), 900, "POST")
    assert body["request_params"] == {"api_token": "w***z", "url": hosted[0]}
    assert wrong not in json.dumps(body)


def test_error_500_not_audio(server: Server, http: httpx.Client, token: str) -> None:
    resp = http.post(server.url + "/", data={"api_token": token}, files={"file": ("a.wav", b"just some text\n" * 50)})
    assert_error(resp, 500)
    resp = http.post(
        server.url + "/", params={"api_token": token}, content=b"\x00" * 999, headers={"Content-Type": "audio/wav"}
    )
    assert_error(resp, 500)


def test_error_300_too_short(server: Server, http: httpx.Client, token: str, pieces: list[Piece], tmp: Path) -> None:
    data = wav(pieces[0].samples[: int(0.3 * PIECE_RATE)], tmp, "short.wav")
    assert_error(http.post(server.url + "/", data={"api_token": token}, files={"file": ("s.wav", data)}), 300)


def test_error_400_oversize_with_content_length(strict_server: Server, http: httpx.Client, strict_token: str) -> None:
    big = b"RIFF" + b"\x01" * (1536 * 1024)
    resp = http.post(strict_server.url + "/", data={"api_token": strict_token}, files={"file": ("big.wav", big)})
    assert assert_error(resp, 400, "POST")["request_params"] == {}  # the body was refused unread
    resp = http.post(
        strict_server.url + "/", params={"api_token": strict_token, "x": "y"}, files={"file": ("big.wav", big)}
    )
    assert assert_error(resp, 400)["request_params"] == {"api_token": masked(strict_token), "x": "y"}
    resp = http.post(
        strict_server.url + "/", params={"api_token": strict_token}, content=big, headers={"Content-Type": "audio/wav"}
    )
    assert_error(resp, 400)


def test_error_400_oversize_chunked(strict_server: Server, http: httpx.Client, strict_token: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(24):
            yield b"\x01" * 65536  # 1.5 MB in all

    req = http.build_request(
        "POST", strict_server.url + "/", params={"api_token": strict_token}, content=chunks(),
        headers={"Content-Type": "audio/wav"},
    )  # fmt: skip
    assert req.headers.get("transfer-encoding") == "chunked" and "content-length" not in req.headers
    assert_error(http.send(req), 400)


def test_error_400_file_over_cap_but_body_within_slack(
    strict_server: Server, http: httpx.Client, strict_token: str
) -> None:
    # The body limit leaves room for base64 and form overhead; the audio itself is still capped.
    data = b"\x01" * (1024 * 1024 + 1000)
    resp = http.post(strict_server.url + "/", data={"api_token": strict_token}, files={"file": ("f.wav", data)})
    assert_error(resp, 400)


def test_error_600_unreachable_url(
    server: Server, http: httpx.Client, token: str, file_server: tuple[str, Path]
) -> None:
    port = live_server.free_port()  # nothing listens there
    assert_error(http.get(server.url + "/", params={"api_token": token, "url": f"http://127.0.0.1:{port}/a.mp3"}), 600)
    assert_error(http.get(server.url + "/", params={"api_token": token, "url": f"{file_server[0]}/missing.wav"}), 600)
    assert_error(http.get(server.url + "/", params={"api_token": token, "url": "not a url at all"}), 600)


def test_error_50_unknown_method(server: Server, http: httpx.Client, token: str) -> None:
    for path in ("/fooBar/", "/fooBar"):
        body = assert_error(http.post(server.url + path, data={"api_token": token}), 50)
        assert body["request_api_method"] == "fooBar"
        assert "fooBar" in body["error"]["error_message"]
    body = assert_error(http.get(server.url + "/", params={"method": "noSuchMethod", "api_token": token}), 50)
    assert body["request_api_method"] == "noSuchMethod"


@pytest.mark.parametrize("how", ["path", "path-no-slash", "param"])
def test_recognize_with_offset_not_supported(
    server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], how: str
) -> None:
    params = {"api_token": token, "url": hosted[0]}
    if how == "param":
        resp = http.post(server.url + "/", data={**params, "method": "recognizeWithOffset"})
    else:
        resp = http.post(
            server.url + ("/recognizeWithOffset/" if how == "path" else "/recognizeWithOffset"), data=params
        )
    body = assert_error(resp, 50)
    assert body["request_api_method"] == "recognizeWithOffset"
    assert "not supported" in body["error"]["error_message"]


def test_find_lyrics(server: Server, http: httpx.Client, token: str) -> None:
    body = assert_error(http.post(server.url + "/findLyrics/", data={"api_token": token}), 50)
    assert body["request_api_method"] == "findLyrics"
    assert body["error"]["error_message"].startswith("Finding lyrics failed: ")
    resp = http.get(server.url + "/findLyrics/", params={"api_token": token, "q": "qwzx nothing matches this"})
    assert resp.json() == {"status": "success", "result": []}


def test_find_lyrics_ids_are_integers(server: Server, http: httpx.Client, token: str, pieces: list[Piece]) -> None:
    # AudD's schema (openapi.yaml, FindLyricsResult): song_id and artist_id are integers.
    resp = http.get(server.url + "/findLyrics/", params={"api_token": token, "q": pieces[0].title})
    hits = ok_list(resp)
    assert hits and hits[0]["title"] == pieces[0].title
    for hit in hits:
        assert type(hit["song_id"]) is int and type(hit["artist_id"]) is int
        assert hit["song_link"].endswith(f"/song/{hit['song_id']}")


# --- quotas and scopes ----------------------------------------------------------------------------


def test_token_monthly_limit_902(server: Server, http: httpx.Client, hosted: tuple[str, Piece]) -> None:
    limited = server.token("limited", "--limit-per-month", "2")
    params = {"api_token": limited, "url": hosted[0]}
    for _ in range(2):
        assert ok_result(http.get(server.url + "/", params=params))["title"] == hosted[1].title
    body = assert_error(http.get(server.url + "/", params=params), 902)
    assert body["request_params"]["api_token"] == masked(limited)


def test_anonymous_daily_limit_901(strict_server: Server, pieces: list[Piece], tmp: Path) -> None:
    # The anonymous quota is per client address: connect from a loopback address of our own so
    # that the other tests' anonymous requests (from 127.0.0.1) neither count here nor get used up.
    data = clip_of(pieces[3], tmp)
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.77", 0))
    except OSError:
        pytest.skip("this host cannot use 127.0.0.77 as a source address")
    transport = httpx.HTTPTransport(local_address="127.0.0.77")
    with httpx.Client(transport=transport, timeout=60) as anon:
        bodies = [anon.post(strict_server.url + "/", files={"file": ("a.wav", data)}).json() for _ in range(3)]
    assert bodies[0]["status"] == bodies[1]["status"] == "success"
    assert bodies[0]["result"]["title"] == pieces[3].title
    assert bodies[2]["status"] == "error" and bodies[2]["error"]["error_code"] == 901
    assert bodies[2]["request_params"] == {}


def test_upload_auth(server: Server, http: httpx.Client, token: str, clip2: bytes) -> None:
    files = {"file": ("c.wav", clip2)}
    body = assert_error(http.post(server.url + "/upload/", data={"audio_id": "5"}, files=files), 900)
    assert body["request_api_method"] == "upload"
    assert body["error"]["error_message"].startswith("Uploading the song failed: ")
    reader = server.token("reader", "--scopes", "recognize")
    assert_error(http.post(server.url + "/upload/", data={"api_token": reader, "audio_id": "5"}, files=files), 904)
    # Refused by the typed layer with AudD's 50 (not an OverflowError and a 500): out of SQLite's
    # 64-bit range, negative, or not plain digits.
    for bad in ("abc", "", "1.5", "-5", "1_0", "1e3", "inf", "nan", "０", str(2**63), "9" * 40):
        resp = http.post(server.url + "/upload/", data={"api_token": token, "audio_id": bad}, files=files)
        assert "audio_id" in assert_error(resp, 50)["error"]["error_message"], bad
        assert resp.headers.get("connection") != "close"
    # Without an audio_id parameter at all.
    assert_error(http.post(server.url + "/upload/", data={"api_token": token}, files=files), 50)
    # The recognize-only token still recognizes.
    assert ok_result(http.post(server.url + "/", data={"api_token": reader}, files=files))


# --- SSRF -----------------------------------------------------------------------------------------


@pytest.fixture()
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every connection the loopback file server handles during the test."""
    seen: list[str] = []
    original = live_server._Handler.handle

    def handle(self: live_server._Handler) -> None:
        seen.append(str(self.client_address))
        original(self)

    monkeypatch.setattr(live_server._Handler, "handle", handle)
    return seen


@pytest.fixture()
def ipv6_listener() -> Iterator[socket.socket | None]:
    """A listening socket on [::1] (None where the host has no IPv6 loopback)."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        yield None
        return
    try:
        sock.bind(("::1", 0))
        sock.listen(8)
        sock.setblocking(False)
    except OSError:
        sock.close()
        yield None
        return
    yield sock
    sock.close()


def test_ssrf_refused_on_strict_server(
    strict_server: Server, http: httpx.Client, strict_token: str, file_server: tuple[str, Path],
    connections: list[str], ipv6_listener: socket.socket | None,
) -> None:  # fmt: skip
    base, root = file_server
    (root / "x.wav").write_bytes(b"RIFF")
    port = int(base.rsplit(":", 1)[1])
    v6_port = ipv6_listener.getsockname()[1] if ipv6_listener else port
    # Guard: never let the server under test contact anything but loopback. Each of these
    # addresses must be refused by validation before any connection is tried.
    for ip in ("10.0.0.1", "169.254.169.254", "127.0.0.1", "::1"):
        assert not is_public_ip(ipaddress.ip_address(ip))
    urls = [
        f"http://127.0.0.1:{port}/x.wav",
        f"http://localhost:{port}/",
        "http://10.0.0.1/a.mp3",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::1]:{v6_port}/",
        f"http://127.0.0.1:{port}/redirect-to/{base}/x.wav",
        f"http://0x7f000001:{port}/x.wav",
        "file:///etc/passwd",
        "ftp://x/y",
        f"http://user:pw@127.0.0.1:{port}/x.wav",
    ]
    for url in urls:
        body = assert_error(http.post(strict_server.url + "/", data={"api_token": strict_token, "url": url}), 600)
        message = body["error"]["error_message"]
        assert re.search(r"refused|not allowed|must not|resolve", message), (url, message)
    assert connections == []
    if ipv6_listener is not None:
        with pytest.raises(BlockingIOError):
            ipv6_listener.accept()
    # Control: the counter does see a connection that reaches the file server.
    assert http.get(f"{base}/x.wav").status_code == 200
    assert len(connections) == 1


# --- JSONP, CORS ----------------------------------------------------------------------------------


def test_jsonp(server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece]) -> None:
    resp = http.get(server.url + "/", params={"api_token": token, "url": hosted[0], "jsonp": "cb"})
    assert resp.status_code == 200
    assert resp.text.startswith("cb(") and resp.text.endswith(");")
    assert "javascript" in resp.headers["content-type"]
    inner = json.loads(resp.text[3:-2])
    assert inner["status"] == "success" and inner["result"]["title"] == hosted[1].title
    resp = http.get(server.url + "/", params={"api_token": token, "jsonp": "jQuery123_456.cb"})
    assert resp.text.startswith("jQuery123_456.cb(") and resp.text.endswith(");")
    assert json.loads(resp.text[len("jQuery123_456.cb(") : -2])["error"]["error_code"] == 700
    # A callback that is not a plain name is not echoed into script.
    resp = http.get(server.url + "/", params={"api_token": token, "jsonp": "alert(1)//"})
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["error_code"] == 700


def test_jsonp_from_form_and_json_body(server: Server, http: httpx.Client, token: str) -> None:
    # `jsonp` is a parameter like any other: a form field or a JSON member names the callback too.
    for resp in (
        http.post(server.url + "/findLyrics/", data={"api_token": token, "q": "zzqx", "jsonp": "cb"}),
        http.post(server.url + "/findLyrics/", json={"api_token": token, "q": "zzqx", "jsonp": "cb"}),
    ):
        assert "javascript" in resp.headers["content-type"]
        assert resp.text.startswith("cb(") and json.loads(resp.text[3:-2]) == {"status": "success", "result": []}


def test_all_true_answers_every_match_as_an_array(
    server: Server, http: httpx.Client, token: str, hosted: tuple[str, Piece], tmp: Path
) -> None:
    # AudD's legacy `all=true`: `result` is an array of results, best first (GO-v0 RecognizeAllMatches).
    matches = ok_list(http.get(server.url + "/", params={"api_token": token, "url": hosted[0], "all": "true"}))
    assert matches and matches[0]["title"] == hosted[1].title and set(matches[0]) >= RESULT_KEYS
    assert [m["score"] for m in matches] == sorted((m["score"] for m in matches), reverse=True)
    silence = wav([0.0] * (PIECE_RATE * 4), tmp, "all-silence.wav")
    files = {"file": ("s.wav", silence)}
    assert ok_list(http.post(server.url + "/", data={"api_token": token, "all": "1"}, files=files)) == []
    # Without it, the single best result as before.
    assert ok_result(http.get(server.url + "/", params={"api_token": token, "url": hosted[0]}))["title"] == (
        hosted[1].title
    )


@pytest.fixture(scope="module")
def operator_server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An operator's configuration: its contact and docs, and AudD's demo token enabled (2 a day)."""
    import shutil

    root = tmp_path_factory.mktemp("operator")
    shutil.copytree(built_store, root / "db")
    env = {"SOUNDMARK_CONTACT": "ops@music.example", "SOUNDMARK_DOCS_URL": "https://music.example/api-docs",
           "SOUNDMARK_DEMO_PER_DAY": "2"}  # fmt: skip
    s = live_server.start_server(root / "db", root / "server.log", "--demo-token", env=env)
    yield s
    live_server.stop_server(s)


def test_error_bodies_name_the_operator(operator_server: Server, http: httpx.Client) -> None:
    body = http.get(operator_server.url + "/", params={"api_token": "not-a-token-at-all"}).json()
    assert body["error"]["error_code"] == 900
    assert body["see api documentation"] == "https://music.example/api-docs"
    assert body["contact us"] == "ops@music.example"
    assert "audd.io" not in json.dumps(body)


def test_demo_token_only_when_enabled(
    server: Server, operator_server: Server, http: httpx.Client, hosted: tuple[str, Piece], clip2: bytes
) -> None:
    # Off by default: `test` is just a wrong token.
    assert_error(http.get(server.url + "/", params={"api_token": "test", "url": "x"}), 900)
    # Enabled: recognition works, within the daily demo quota, and nothing else is allowed.
    url = operator_server.url
    files = {"file": ("c.wav", clip2)}
    assert ok_result(http.post(url + "/", data={"api_token": "test"}, files=files))
    assert ok_list(http.get(url + "/findLyrics/", params={"api_token": "test", "q": "zzqx"})) == []
    third = http.post(url + "/", data={"api_token": "test"}, files=files).json()
    assert third["error"]["error_code"] == 902 and "demo" in third["error"]["error_message"]
    upload = http.post(url + "/upload/", data={"api_token": "test", "audio_id": "7"}, files=files).json()
    assert upload["error"]["error_code"] == 904
    assert upload["request_params"]["api_token"] == "t***t"


def test_cors(server: Server, http: httpx.Client, token: str) -> None:
    origin = {"Origin": "https://example.org"}
    resp = http.post(server.url + "/", data={"api_token": token}, headers=origin)
    assert resp.headers["access-control-allow-origin"] == "*"
    resp = http.get(server.url + "/findLyrics/", params={"api_token": token, "q": "x"}, headers=origin)
    assert resp.headers["access-control-allow-origin"] == "*"
    preflight = http.options(
        server.url + "/",
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


# --- secrets --------------------------------------------------------------------------------------


def test_tokens_never_echoed_or_logged(
    server: Server, http: httpx.Client, clip2: bytes, hosted: tuple[str, Piece]
) -> None:
    secret = server.token("secret")
    wrong = "Wr0ngButSecretTokenValue_" + "q" * 20
    url = server.url
    responses = [
        http.get(url + "/", params={"api_token": secret}),
        http.get(url + "/recognize/", params={"api_token": secret, "url": hosted[0]}),
        http.post(url + "/", data={"api_token": secret}),
        http.post(url + "/", data={"api_token": secret}, files={"file": ("c.wav", clip2)}),
        http.post(url + "/", content=json.dumps({"api_token": secret, "url": "ftp://nope/"})),
        http.post(url + "/", params={"api_token": secret}, content=b"garbage", headers={"Content-Type": "audio/wav"}),
        http.get(url + "/", params={"api_token": wrong, "url": hosted[0]}),
        http.post(url + "/", data={"api_token": wrong}),
        http.post(url + "/fooBar/", params={"api_token": secret}),
        http.post(url + "/upload/", data={"api_token": secret, "audio_id": "x"}),
        http.get(url + "/findLyrics/", params={"api_token": secret, "q": "neon", "jsonp": "cb"}),
        http.get(url + "/nope/x/", params={"API_TOKEN": secret}),
        http.post(url + "/", content=b"api_token=" + secret.encode() + b"&%%%", headers={"Content-Type": "x/y"}),
    ]
    for resp in responses:
        assert resp.status_code < 500
        assert secret not in resp.text and wrong not in resp.text, resp.request.url
    log = server.log_text()
    assert secret not in log
    assert wrong not in log
    assert "api_token=***" in log  # the request log keeps the query, redacted


def test_token_like_parameters_are_redacted_after_decoding(server: Server, http: httpx.Client) -> None:
    secret = server.token("encoded")
    # `api%5Ftoken` decodes to `api_token`: it authenticates (700: no audio, not 900) ...
    resp = http.get(server.url + f"/recognize/?api%5Ftoken={secret}&q=1")
    body = assert_error(resp, 700)
    assert secret not in resp.text
    # ... and a token under any token-like name is masked in the echo, whatever its case.
    odd = {"API_TOKEN": secret, "Access_Token": secret, "token": secret, "api_key": secret, "password": secret}
    resp = http.get(server.url + "/recognize/", params=odd)
    body = assert_error(resp, 700)
    assert secret not in resp.text
    assert body["request_params"] == {k: f"{secret[0]}***{secret[-1]}" for k in odd}
    resp = http.post(server.url + "/recognize/", data={"Api_Token": secret})
    assert secret not in resp.text and assert_error(resp, 700)["request_params"]["Api_Token"].endswith(
        "***" + secret[-1]
    )
    log = server.log_text()
    assert secret not in log
    assert "api_token=***" in log and "API_TOKEN=***" in log  # the decoded query, redacted


# --- operational endpoints ------------------------------------------------------------------------


def test_operational_endpoints(server: Server, http: httpx.Client) -> None:
    health = http.get(server.url + "/healthz")
    assert health.status_code == 200
    h = health.json()
    assert h["status"] == "ok" and h["tracks"] >= 6 and h["workers"] >= 1
    metrics = http.get(server.url + "/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert "soundmark_requests_total" in metrics.text
    assert re.search(r'soundmark_requests_total\{method="recognize",status="(success|error)"\} \d', metrics.text)
    spec = http.get(server.url + "/openapi.json")
    assert spec.status_code == 200
    doc = spec.json()
    assert doc["openapi"].startswith("3.") and "/" in doc["paths"] and "/healthz" in doc["paths"]
    docs = http.get(server.url + "/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")


def test_metrics_method_label_is_bounded(server: Server, http: httpx.Client, token: str) -> None:
    for name in ("madeUpMethodOne", "madeUpMethodTwo", "x" * 200):
        assert_error(http.get(server.url + f"/{name}/", params={"api_token": token}), 50)
    assert_error(http.get(server.url + "/", params={"api_token": token, "method": "madeUpMethodThree"}), 50)
    text = http.get(server.url + "/metrics").text
    labels = set(re.findall(r'soundmark_requests_total\{method="([^"]*)"', text))
    assert "madeUp" not in text and "other" in labels
    assert labels <= {"recognize", "recognizeWithOffset", "findLyrics", "upload", "enterprise", "setCallbackUrl",
                      "getCallbackUrl", "addStream", "setStreamUrl", "getStreams", "deleteStream", "longpoll",
                      "lastSong", "getChannelById", "explain", "other"}  # fmt: skip


def test_docs_work_offline(server: Server, http: httpx.Client) -> None:
    # Swagger UI comes from this server, not a CDN: every asset /docs references is local and served.
    html = http.get(server.url + "/docs").text
    assert "http://" not in html and "https://" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        resp = http.get(server.url + asset)
        assert resp.status_code == 200 and len(resp.content) > 500, asset
    assert "SwaggerUIBundle" in http.get(server.url + next(a for a in assets if a.endswith(".js"))).text
