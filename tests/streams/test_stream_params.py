"""Hostile parameters of the stream methods, longpoll and getChannelById against a live server:
each is AudD's error 50 (golongpoll's ``{"error"}`` / a 400 on the non-AudD routes), never a 500,
and the keep-alive connection that sent it carries the next request (issue 9, item 8)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from audd._callbacks import derive_longpoll_category
from live_server import Server, start_server, stop_server

HUGE = "99999999999999999999"  # > 2**64
INT64_OVER = str(2**63)


@pytest.fixture(scope="module")
def server(built_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("stream-params")
    db = root / "db"
    shutil.copytree(built_store, db)
    s = start_server(db, root / "server.log", "--allow-private-urls")
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token("hostile")


def _local_port(resp: httpx.Response) -> int:
    """The client-side port of the connection that carried ``resp`` (the same port: the same connection)."""
    sock = resp.extensions["network_stream"].get_extra_info("socket")
    return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("method", "params", "names"),
    [
        ("deleteStream", {"radio_id": HUGE}, "radio_id"),
        ("deleteStream", {"radio_id": INT64_OVER}, "radio_id"),
        ("setStreamUrl", {"radio_id": HUGE, "url": "http://127.0.0.1:9/a.mp3"}, "radio_id"),
        ("addStream", {"radio_id": "-5", "url": "http://127.0.0.1:9/a.mp3"}, "radio_id"),
        ("addStream", {"radio_id": "1_0", "url": "http://127.0.0.1:9/a.mp3"}, "radio_id"),
        ("addStream", {"radio_id": "1e3", "url": "http://127.0.0.1:9/a.mp3"}, "radio_id"),
        ("addStream", {"radio_id": "3", "url": "http://127.0.0.1:9/a.mp3", "callbacks": "after"}, "callbacks"),
        ("addStream", {"radio_id": "3"}, "url"),
    ],
)
def test_stream_methods_refuse_bad_parameters(
    server: Server, token: str, method: str, params: dict, names: str
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.post(f"/{method}/", data={"api_token": token, **params})
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["status"] == "error" and body["error"]["error_code"] == 50, body
        assert names in body["error"]["error_message"]
        after = client.post("/getStreams/", data={"api_token": token})  # the same connection still serves
        assert after.json()["status"] == "success" and _local_port(after) == _local_port(first)


@pytest.mark.parametrize(
    "params",
    [
        {"category": "abc", "since_time": HUGE},
        {"category": "abc", "since_time": INT64_OVER},
        {"category": "abc", "since_time": "-1"},
        {"category": "abc", "timeout": HUGE},
        {"category": "abc", "timeout": "0"},
        {"category": "abc", "timeout": "inf"},
        {"category": ""},
    ],
)
def test_longpoll_refuses_bad_parameters(server: Server, params: dict) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        first = client.get("/longpoll/", params=params)
        assert first.status_code == 400 and "error" in first.json(), first.text
        after = client.get("/longpoll/", params={"category": "abc", "timeout": 1, "since_time": 0})
        assert after.json()["timeout"] == "no events before timeout" and _local_port(after) == _local_port(first)


def test_getchannelbyid_answers_a_known_stream_and_refuses_the_rest(server: Server) -> None:
    token = server.token("channel")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        added = client.post("/addStream/", data={"api_token": token, "radio_id": 4, "url": "http://127.0.0.1:9/x"})
        assert added.json()["status"] == "success", added.text
        category = derive_longpoll_category(token, 4)
        # audd-cli's request: GET /lastSong/getChannelById/?ch_id=-<category>, no token.
        known = client.get("/lastSong/getChannelById/", params={"ch_id": f"-{category}"})
        assert known.status_code == 200 and known.headers["access-control-allow-origin"] == "*"
        assert known.json() == {"NumericalId": f"-{category}", "StringId": category,
                                "History": {"Elements": [], "OldestElement": 0}}  # fmt: skip
        unknown = client.get("/lastSong/getChannelById/", params={"ch_id": "-000000000"})
        assert unknown.status_code == 404 and unknown.json() == "not_found"
        for bad in ("", "../../etc", "x" * 100):
            resp = client.get("/lastSong/getChannelById/", params={"ch_id": bad})
            assert resp.status_code == 400 and "ch_id" in resp.json()
        after = client.get("/lastSong/getChannelById/", params={"ch_id": f"-{category}"})
        assert after.status_code == 200 and _local_port(after) == _local_port(known)
