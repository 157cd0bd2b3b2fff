"""No request, however malformed, makes the server answer 5xx or log a traceback."""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
from pathlib import Path

import httpx
import pytest
from live_server import Server

from soundmark.demo import write_wav
from support import PIECE_RATE, Piece

SEED = 20240917
FUZZ_REQUESTS = 150


def raw_request(server: Server, data: bytes, timeout: float = 30) -> tuple[int | None, bytes]:
    """Send ``data`` as-is on a fresh connection; the status (None if the server answered nothing)
    and the whole answer."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)  # with Connection: close, the server closes once it has answered
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    status = None
    if answer.startswith(b"HTTP/1.1 "):
        status = int(answer[9:12])
    return status, answer


def compose(method: str, target: bytes, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} ".encode() + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{k}: {v}".encode("latin-1") for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _wav_header(channels: int, rate: int, bits: int, data_len: int, fmt_len: int = 16) -> bytes:
    byte_rate = rate * channels * max(bits, 8) // 8 & 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, rate, byte_rate, channels * bits // 8 & 0xFFFF, bits)
    fmt = fmt[:fmt_len] + b"\x00" * max(0, fmt_len - 16)
    return (
        b"RIFF"
        + struct.pack("<I", 0xFFFFFFFF)
        + b"WAVEfmt "
        + struct.pack("<I", fmt_len)
        + fmt
        + b"data"
        + struct.pack("<I", data_len)
    )


def audio_payloads(rng: random.Random, tiny_wav: bytes) -> list[bytes]:
    return [
        b"",
        b"\x00",
        bytes(rng.getrandbits(8) for _ in range(2000)),
        tiny_wav[:44],  # a header and no samples
        tiny_wav[: len(tiny_wav) // 2],
        _wav_header(0, 44100, 16, 1000) + b"\x01" * 1000,
        _wav_header(1, 0, 16, 1000) + b"\x01" * 1000,
        _wav_header(2, 44100, 0, 0xFFFFFFFF) + b"\x01" * 1000,
        _wav_header(65535, 4294967295, 64, 1000) + b"\x01" * 1000,
        _wav_header(1, 8000, 16, 16, fmt_len=2),
        b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff\xfb" * 500,  # an ID3 tag claiming a huge size
        b"OggS" + b"\x00" * 300,
        b"fLaC" + b"\xff" * 300,
        b"\x1aE\xdf\xa3" + b"\x42" * 300,  # EBML (webm) magic
        b"<html><body>not audio</body></html>",
    ]


MULTIPART_BOUNDARY = "XyZ123"


def multipart_bodies(rng: random.Random, audio: bytes) -> list[tuple[str, bytes]]:
    b = MULTIPART_BOUNDARY
    good_part = (
        (
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        + audio
        + f"\r\n--{b}--\r\n".encode()
    )
    field = f'--{b}\r\nContent-Disposition: form-data; name="api_token"\r\n\r\nabc\r\n'.encode()
    many_files = (
        b"".join(
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="{i}.wav"\r\n\r\nxx\r\n'.encode()
            for i in range(8)
        )
        + f"--{b}--\r\n".encode()
    )
    many_fields = (
        b"".join(f'--{b}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n'.encode() for i in range(300))
        + f"--{b}--\r\n".encode()
    )
    return [
        (f"multipart/form-data; boundary={b}", good_part),
        (f"multipart/form-data; boundary={b}", good_part[: len(good_part) // 2]),  # truncated
        (f"multipart/form-data; boundary={b}", field),  # no closing boundary
        ("multipart/form-data; boundary=other", good_part),  # boundary mismatch
        ("multipart/form-data", good_part),  # no boundary parameter
        ("multipart/form-data; boundary=", good_part),
        ('multipart/form-data; boundary=""', good_part),
        ("multipart/form-data; boundary=" + "b" * 300, good_part),
        (f"multipart/form-data; boundary={b}; charset=no-such-charset", good_part),
        (f"multipart/form-data; boundary={b}", f"--{b}\r\n\r\nno headers\r\n--{b}--\r\n".encode()),
        (f"multipart/form-data; boundary={b}", f"--{b}\r\nContent-Disposition: form-data\r\n\r\nx\r\n--{b}--".encode()),
        (
            f"multipart/form-data; boundary={b}",
            f'--{b}\r\nContent-Disposition: form-data; name="q\xe9"; filename="\xff\xfe.wav"\r\n\r\n'.encode("latin-1")
            + b"\xff\xfe\xfd\r\n"
            + f"--{b}--\r\n".encode(),
        ),
        (
            f"multipart/form-data; boundary={b}",
            f'--{b}\r\nContent-Disposition: form-data; name="url"\r\n\r\n'.encode()
            + b"\xc0\xaf\xff"
            + f"\r\n--{b}--\r\n".encode(),
        ),
        (
            f"multipart/form-data; boundary={b}",
            f'--{b}\r\nContent-Disposition: form-data; name="x"\r\n'.encode() + b"A" * 20000,
        ),
        (f"multipart/form-data; boundary={b}", many_files),
        (f"multipart/form-data; boundary={b}", many_fields),
        (f"multipart/form-data; boundary={b}", bytes(rng.getrandbits(8) for _ in range(500))),
        ("multipart/mixed; boundary=" + b, good_part),
    ]


def other_bodies(rng: random.Random) -> list[tuple[str, bytes]]:
    deep = b'{"a":' * 3000 + b"1" + b"}" * 3000
    deeper = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return [
        ("application/x-www-form-urlencoded", b"%%%&&==&a=%zz&=x&api_token"),
        ("application/x-www-form-urlencoded", b"api_token=\xff\xfe&url=\xc0\xaf&method=%ff%fe"),
        ("application/x-www-form-urlencoded", b"&".join(b"k%d=v" % i for i in range(500))),
        ("application/x-www-form-urlencoded", b"api_token=" + b"A" * 200_000),
        ("application/x-www-form-urlencoded", bytes(rng.getrandbits(8) for _ in range(1000))),
        ("application/x-www-form-urlencoded; charset=utf-16", "method=findLyrics&q=x".encode("utf-16")),
        ("application/json", b"[]"),
        ("application/json", b'[{"api_token": "x"}]'),
        ("application/json", b'{"a": {"b": [1, {"c": null}]}, "return": ["spotify", 2]}'),
        ("application/json", b'{"audio_id": 123456789012345678901234567890123, "url": 1e999999}'),
        ("", b'{"method": "upload", "audio_id": -1e308, "url": false}'),
        ("application/json", b'{"q": ' + b"9" * 5000 + b"}"),
        ("application/json", b'{"x": "' + b"a" * 100_000 + b'"}'),
        ("application/json", b'{"unterminated": '),
        ("application/json", deep),
        ("", deeper),
        ("text/plain", b"\xef\xbb\xbf{}"),
        ("text/plain", b"\xff\xfe{\x00}\x00"),
        ("", b'{"method": "findLyrics", "q": "\\ud800", "jsonp": "cb"}'),
        ("application/json", b'{"api_token": "\\udfff\\ud800", "weird\\u0000key": "\\u0000"}'),
        ("", b'{"url": "http://\\ud800/", "method": "\\ud83c"}'),
        ("", b'{"audio": "\\ud800AAAA", "return": "\\ud800"}'),
        ("", b'{"method": "\\u0000"}'),
        ("application/json", b'{"method": "recognize", "method": "upload"}'),
        ("audio/wav", b""),
        ("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
        ("application/octet-stream", bytes(rng.getrandbits(8) for _ in range(3000))),
        ("text/html", b"<html></html>"),
        ("application/xml", b"<?xml version='1.0'?><a/>"),
        ("image/png", b"\x89PNG\r\n\x1a\n"),
        ("\x01\x02", b"{}"),
        ("multipart/form-data; boundary=\xff", b"--\xff--"),
    ]


PATHS = [
    b"/", b"/recognize/", b"/recognize", b"/upload/", b"/findLyrics/", b"/recognizeWithOffset/",
    b"/%00", b"/%00/", b"/a%00b/", b"/%ff%fe/", b"/\xff\xfe/", b"/r\xc3\xa9cognize/", b"/%F0%9F%8E%B5/",
    b"//", b"///recognize//", b"/recognize/extra/segments", b"/..%2f..%2fetc/passwd", b"/./", b"/.%2e/",
    b"/" + b"a" * 3000, b"/" + b"%41" * 2000, b"/song/-1", b"/song/99999999999999999999999999",
    b"/song/%C2%B2", b"/song/%EF%BC%91", b"/song/0x1", b"/song/", b"/ws/", b"/ws", b"/healthz?x=%ff",
    b"/metrics/", b"/docs/", b"/openapi.json/", b"*", b"http://127.0.0.1/recognize/",
]  # fmt: skip

QUERY_PARTS = [
    b"api_token=a&api_token=b", b"api_token=", b"api_token=%ff%fe", b"api_token=%", b"api_token=%zz",
    b"method=%00", b"method=upload", b"method=findLyrics", b"method=recognizeWithOffset", b"method=..%2F..",
    b"method=" + b"M" * 1000, b"q=%ff", b"q=" + b"%E2%82%AC" * 300, b"jsonp=cb", b"jsonp=%ff",
    b"jsonp=" + b"a" * 5000, b"jsonp=a.b$c_d", b"return=spotify,spotify,,%ff,lyrics", b"return=" + b"," * 500,
    b"market=%00", b"market=zz-ZZ", b"audio_id=-0", b"audio_id=1e5", b"audio_id=%EF%BC%91",
    b"audio_id=99999999999999999999999", b"url=", b"url=%00", b"url=http://127.0.0.1:1/a.mp3",
    b"url=http://[::1", b"url=http:///nohost", b"url=file:///etc/passwd", b"url=gopher://127.0.0.1:1/",
    b"url=http://127.0.0.1:99999/", b"url=%ff%fe", b"url=http://localhost:1/%00", b"audio=%ff%fe",
    b"audio=data:,", b"audio=data:audio/wav;base64,", b"audio=AAAA", b"audio=====", b"=", b"&&&", b"a==b",
    b";;", b"+=+", b"x=%2", b"\xff\xfe=\xc0\xaf", b"all=true", b"api_token=x;url=y",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_wav(pieces: list[Piece], tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("robust") / "tiny.wav"
    write_wav(path, pieces[0].samples[: 2 * PIECE_RATE], PIECE_RATE)
    return path.read_bytes()


def test_fuzzed_requests_never_5xx(server: Server, tiny_wav: bytes) -> None:
    rng = random.Random(SEED)
    audio = audio_payloads(rng, tiny_wav)
    multipart = multipart_bodies(rng, tiny_wav)
    bodies = other_bodies(rng)
    # Every path once, then every body once (POSTed to an API path), then random mixes.
    scheduled = multipart + bodies
    assert len(PATHS) + len(scheduled) <= FUZZ_REQUESTS
    api_paths = [b"/", b"/recognize/", b"/upload/", b"/findLyrics/", b"/fooBar"]
    failures: list[str] = []
    for i in range(FUZZ_REQUESTS):
        method = rng.choice(["GET", "GET", "POST", "POST", "POST", "POST", "POST", "PUT", "DELETE"])
        path = PATHS[i] if i < len(PATHS) else rng.choice(PATHS)
        query = b"&".join(rng.sample(QUERY_PARTS, rng.randint(0, 4)))
        j = i - len(PATHS)
        if 0 <= j < len(scheduled):
            method, path = "POST", api_paths[j % len(api_paths)]
        target = path + (b"?" + query if query else b"")
        headers: dict[str, str] = {}
        body = b""
        kind = rng.random()
        if 0 <= j < len(scheduled):
            ctype, body = scheduled[j]
        elif method != "GET" and kind < 0.35:
            ctype, body = rng.choice(multipart)
        elif method != "GET" and kind < 0.75:
            ctype, body = rng.choice(bodies)
        elif method != "GET":
            ctype, body = rng.choice(["audio/wav", "application/octet-stream", "audio/mpeg"]), rng.choice(audio)
        else:
            ctype = ""
        if ctype:
            headers["Content-Type"] = ctype
        status, answer = raw_request(server, compose(method, target, headers, body))
        what = f"#{i} {method} {target[:120]!r} {ctype!r} body={body[:60]!r}"
        if status is None or status >= 500:
            failures.append(f"{what} -> {answer[:300]!r}")
    assert failures == []
    assert "Traceback" not in server.log_text()
    assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200


def test_uploaded_audio_variants_never_5xx(server: Server, tiny_wav: bytes) -> None:
    """Every malformed audio payload, through each way in: multipart, raw body and base64."""
    import base64

    rng = random.Random(SEED + 1)
    token = server.token("robust")
    failures = []
    with httpx.Client(timeout=60) as http:
        for n, data in enumerate(audio_payloads(rng, tiny_wav)):
            answers = [
                http.post(server.url + "/", data={"api_token": token}, files={"file": ("x.bin", data)}),
                http.post(
                    server.url + "/", params={"api_token": token}, content=data, headers={"Content-Type": "audio/wav"}
                ),
                http.post(server.url + "/", data={"api_token": token, "audio": base64.b64encode(data).decode()}),
            ]
            for resp in answers:
                body = resp.json()
                if resp.status_code != 200 or body["status"] not in ("success", "error"):
                    failures.append(f"payload {n}: {resp.status_code} {resp.text[:200]}")
                elif body["status"] == "error" and body["error"]["error_code"] not in (300, 400, 500, 700):
                    failures.append(f"payload {n}: {body['error']}")
    assert failures == []
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize("ctype", ["multipart/form-data; boundary=XyZ123", "audio/wav", "application/json"])
def test_upload_cut_off_mid_body(server: Server, ctype: str) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"POST /?api_token=abc HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\nContent-Length: 100000\r\n\r\n"
    ).encode()
    body = b'--XyZ123\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n' + b"\x01" * 1000
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head + body[:1000])
    # And one that stops inside the headers.
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Le")
    health = httpx.get(server.url + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "ok"
    resp = httpx.post(server.url + "/", data={"api_token": "abc"}, timeout=30)
    assert resp.status_code == 200 and resp.json()["error"]["error_code"] == 900
    assert "Traceback" not in server.log_text()


def test_concurrent_requests(server: Server, pieces: list[Piece], tmp_path: Path) -> None:
    token = server.token("concurrent")
    clips = []
    for i, piece in enumerate(pieces):
        path = tmp_path / f"c{i}.wav"
        a = int((5 + 3 * i) * PIECE_RATE)
        write_wav(path, piece.samples[a : a + 5 * PIECE_RATE], PIECE_RATE)
        clips.append((path.read_bytes(), piece.title))
    results: list[tuple[int, str | None, str]] = []
    lock = threading.Lock()
    start = threading.Barrier(30)

    def work(n: int) -> None:
        data, title = clips[n % len(clips)]
        with httpx.Client(timeout=120) as http:
            start.wait()
            if n % 3 == 2:
                resp = http.get(server.url + "/healthz")
                got = "ok" if resp.status_code == 200 and resp.json()["status"] == "ok" else resp.text
                expected = "ok"
            else:
                resp = http.post(server.url + "/", data={"api_token": token}, files={"file": ("c.wav", data)})
                body = resp.json()
                got = body["result"]["title"] if body.get("status") == "success" and body["result"] else resp.text
                expected = title
        with lock:
            results.append((resp.status_code, got, expected))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 30
    assert all(status == 200 and got == expected for status, got, expected in results), results


def test_json_body_types_are_echoed_as_strings(server: Server) -> None:
    """Non-string JSON values reach the handlers (and the echo) as strings, never as objects."""
    with httpx.Client(timeout=30) as http:
        body = json.dumps({"api_token": 12345, "x": {"y": [1, None]}, "z": True})
        answer = http.post(server.url + "/", content=body).json()
    assert answer["error"]["error_code"] == 900
    assert answer["request_params"] == {"api_token": "1***5", "x": '{"y": [1, null]}', "z": "true"}


@pytest.mark.parametrize(
    "tail", ["%C2%B2", "%EF%BC%91", "99999999999999999999999999", "-1", "0x1", "1.0", "%00", "1%0A"]
)
def test_odd_song_ids_are_404(server: Server, tail: str) -> None:
    status, answer = raw_request(server, compose("GET", f"/song/{tail}".encode(), {}, b""))
    assert status == 404, answer[:300]
    assert b"text/html" in answer.split(b"\r\n\r\n", 1)[0].lower()


def test_websocket_parameters_go_through_the_typed_layer(server: Server, pieces: list[Piece], tmp_path: Path) -> None:
    from websockets.sync.client import connect

    token = server.token("ws-params")
    path = tmp_path / "ws.wav"
    write_wav(path, pieces[2].samples[8 * PIECE_RATE : 14 * PIECE_RATE], PIECE_RATE)
    frame = path.read_bytes()
    base = server.url.replace("http://", "ws://") + f"/ws/?api_token={token}"
    # A malformed parameter: every frame is answered with AudD's error 50 naming it.
    with connect(base + "&all=maybe") as ws:
        ws.send(frame)
        body = json.loads(ws.recv(timeout=60))
        assert body["error"]["error_code"] == 50 and "`all`" in body["error"]["error_message"]
        assert body["request_params"]["api_token"] == f"{token[0]}***{token[-1]}"
    # all=true: every match as an array, as over HTTP.
    with connect(base + "&all=true") as ws:
        ws.send(frame)
        body = json.loads(ws.recv(timeout=60))
        assert body["status"] == "success" and body["result"][0]["title"] == pieces[2].title
