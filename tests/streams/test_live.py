"""Live stream monitoring end to end, on loopback only: a soundmark server watches an Icecast 2 mount
(fed by a Python source client at real-time pace) and an HLS stream (written by FFmpeg's HLS muxer,
served over HTTP), reports to a callback receiver that is down at first, and serves longpoll.

One timeline runs in a module fixture; each test waits (with a deadline) for what it checks.
Icecast line: Piece A (on air before the stream is added), unknown audio, Piece B joined 20 s into
the song, then Icecast is killed and restarted, then Piece C. HLS line (callbacks=before): Piece D,
Piece E. Timestamps are read in UTC+3, the default zone, as AudD's own clients read them.
"""

from __future__ import annotations

import gc
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import audd
import httpx
import pytest
from audd._callbacks import derive_longpoll_category, parse_callback
from live_server import HostRewrite, Server, start_server, stop_server
from radio import ICECAST, RATE, CallbackReceiver, HlsWriter, Icecast, IcecastSource, Item, Schedule

from support import Piece, wait_for

PIECE = 12.0  # seconds of each catalog piece played
TOLERANCE = 3.0  # seconds: reported start vs when the piece went on air
ENV_HOP = 4.0  # SOUNDMARK_STREAM_HOP_SECONDS below: a song joined mid-way is placed within a hop
JOINED_AT = 20.0  # seconds into Piece B where the Icecast line joins it
ENV = {
    "SOUNDMARK_STREAM_WINDOW_SECONDS": "8", "SOUNDMARK_STREAM_HOP_SECONDS": "4",
    "SOUNDMARK_STREAM_SONG_GAP_SECONDS": "8", "SOUNDMARK_STREAM_RECONNECT_MAX_SECONDS": "1",
    "SOUNDMARK_STREAM_READ_TIMEOUT": "5", "SOUNDMARK_CALLBACK_RETRY_MAX_SECONDS": "1",
    "SOUNDMARK_STREAM_SYNC_SECONDS": "1", "SOUNDMARK_STREAMS_PER_TOKEN": "3",
}  # fmt: skip

pytestmark = pytest.mark.skipif(ICECAST is None, reason="icecast2 is not installed (apt-get install icecast2)")


def cut(piece: Piece, seconds: float = PIECE, start: float = 0.0) -> Item:
    a = int(start * RATE)
    return Item(piece.title, piece.samples[a : a + int(seconds * RATE)])


@dataclass
class Live:
    server: Server
    token: str
    sdk: audd.AudD
    http: httpx.Client
    receiver: CallbackReceiver
    icecast: Icecast
    sources: list[IcecastSource] = field(default_factory=list)
    hls: HlsWriter | None = None
    receiver_was_down_for: float = 0.0
    added_at: float = 0.0  # when addStream ran for the Icecast line
    hls_added_at: float = 0.0  # ... and for the HLS line
    errors: list[BaseException] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    def results(self, radio_id: int) -> list[dict]:
        out = []
        for body in self.receiver.snapshot():
            result = body.get("result")
            if isinstance(result, dict) and result.get("radio_id") == radio_id:
                out.append(result)
        return out

    def notifications(self, radio_id: int) -> list[dict]:
        out = []
        for body in self.receiver.snapshot():
            n = body.get("notification")
            if isinstance(n, dict) and n.get("radio_id") == radio_id:
                out.append(n)
        return out

    def played(self, label: str) -> float:
        for src in [*self.sources, *([self.hls] if self.hls else [])]:
            for name, t in src.played:
                if name == label:
                    return t
        raise AssertionError(f"{label} was never played")


def _timeline(live: Live, pieces: list[Piece], unknown: Item, tmp: Path) -> None:
    try:
        # The receiver is down until the first result is queued: it must still get everything.
        down_since = time.monotonic()
        wait_for("the first result in longpoll", lambda: _longpoll_has_result(live), 60)
        live.receiver.up()
        live.receiver_was_down_for = time.monotonic() - down_since
        first = live.sources[0]
        wait_for("the first playlist to finish", first.done.is_set, 90)
        first.close()
        live.icecast.kill()
        wait_for(
            "an outage notification", lambda: any(n["notification_code"] == 650 for n in live.notifications(1)), 30
        )
        live.icecast.start()
        again = IcecastSource(live.icecast.port, "/radio.mp3", Schedule([cut(pieces[2])]))
        live.sources.append(again)
        again.start()
        wait_for("the second playlist to finish", again.done.is_set, 60)
    except BaseException as exc:  # reported by the tests that wait on the timeline
        live.errors.append(exc)
    finally:
        live.finished.set()


def _longpoll_has_result(live: Live) -> bool:
    category = derive_longpoll_category(live.token, 1)
    body = live.http.get(
        f"{live.server.url}/longpoll/", params={"category": category, "timeout": 1, "since_time": 0}
    ).json()
    return "result" in body or ("notification" in body and _later_result(live, category))


def _later_result(live: Live, category: str) -> bool:
    since = 0
    for _ in range(20):
        body = live.http.get(
            f"{live.server.url}/longpoll/", params={"category": category, "timeout": 1, "since_time": since}
        ).json()
        if "result" in body:
            return True
        if "events" not in body:
            return False
        since = body["timestamp"]
    return False


@pytest.fixture(scope="module")
def live(
    built_store: Path, pieces: list[Piece], unknown_piece, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    db = root / "db"
    shutil.copytree(built_store, db)
    server = start_server(db, root / "server.log", "--allow-private-urls", env=ENV)
    http = httpx.Client(timeout=30)
    sdk_http = httpx.Client(transport=HostRewrite(server.url), timeout=60)
    token = server.token("radio")
    sdk = audd.AudD(token, httpx_client=sdk_http, max_retries=1)
    receiver = CallbackReceiver()
    icecast = Icecast(root / "icecast")
    icecast.start()
    live = Live(server, token, sdk, http, receiver, icecast)
    sdk.streams.set_callback_url(receiver.url)

    unknown = Item("", unknown_piece[: int(8 * RATE)])
    schedule = Schedule([cut(pieces[0]), unknown, cut(pieces[1], start=JOINED_AT)])
    source = IcecastSource(icecast.port, "/radio.mp3", schedule)
    live.sources.append(source)
    source.start()
    wait_for("the source to connect", source.connected.is_set, 10)
    time.sleep(1.5)  # Piece A is on air before the stream is added: it was not heard before that
    live.added_at = time.time()
    sdk.streams.add(f"{icecast.url}/radio.mp3", 1)

    www = root / "www"
    live.hls = HlsWriter(www / "hls", [cut(pieces[3]), cut(pieces[4])])
    live.hls.start()
    files = _serve(www)
    wait_for("the HLS playlist", live.hls.playlist.exists, 10)
    live.hls_added_at = time.time()
    sdk.streams.add(f"{files}/hls/live.m3u8", 2, callbacks="before")

    thread = threading.Thread(target=_timeline, args=(live, pieces, unknown, root), daemon=True)
    thread.start()
    yield live
    for src in live.sources:
        src.close()
    live.hls.close()
    receiver.down()
    icecast.kill()
    if server.proc.poll() is None:
        stop_server(server)
    http.close()
    sdk_http.close()
    gc.collect()  # sockets of the SDK's longpoll thread are closed here, not in a later test


def _serve(root: Path) -> str:
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    def handler(*args: object, **kwargs: object) -> Handler:
        return Handler(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def _finished(live: Live) -> None:
    wait_for("the timeline", live.finished.is_set, 150)
    if live.errors:
        raise live.errors[0]


def within(reported: float, actual: float, tolerance: float = TOLERANCE) -> bool:
    """``reported`` (whole seconds, truncated) is within ``tolerance`` of ``actual``."""
    return -tolerance - 1 < reported - actual <= tolerance


def _start_of(result: dict) -> float:
    """A stream ``timestamp`` read as audd-cli reads it: UTC+3 (SOUNDMARK_CALLBACK_TIMEZONE's default)."""
    from datetime import datetime, timedelta, timezone

    utc3 = timezone(timedelta(hours=3))
    return datetime.strptime(result["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=utc3).timestamp()


def test_hls_songs_reported_as_they_start(live: Live, pieces: list[Piece]) -> None:
    titles = {pieces[3].title, pieces[4].title}
    wait_for("both HLS songs", lambda: {r["results"][0]["title"] for r in live.results(2)} >= titles, 60)
    results = live.results(2)
    assert sorted(r["results"][0]["title"] for r in results) == sorted(titles)  # each once
    for r in results:
        assert "play_length" not in r  # callbacks=before
        song = r["results"][0]
        assert isinstance(song["score"], int) and 0 < song["score"] <= 100
        assert within(_start_of(r), max(live.played(song["title"]), live.hls_added_at))


def test_icecast_songs_reported_once_with_times(live: Live, pieces: list[Piece]) -> None:
    _finished(live)
    expected = [pieces[0].title, pieces[1].title, pieces[2].title]
    wait_for("every Icecast song", lambda: len(live.results(1)) >= 3, 30)
    results = live.results(1)
    assert [r["results"][0]["title"] for r in results] == expected  # in order, once each; unknown: nothing
    for r in results:
        title = r["results"][0]["title"]
        # What was heard: Piece A from when the stream was added (it was on air before), Piece B
        # from when the radio joined it 20 s in (not 20 s earlier), each for the 12 s it was played.
        heard_from = max(live.played(title), live.added_at)
        assert _start_of(r) >= int(live.added_at) - 1
        assert within(_start_of(r), heard_from, TOLERANCE if title != pieces[1].title else ENV_HOP + 1)
        assert PIECE - 6 <= r["play_length"] <= PIECE + 6


def test_getchannelbyid_lists_what_was_reported(live: Live, pieces: list[Piece]) -> None:
    """audd-cli's ``streams watch`` / ``history`` read a stream's recent results from
    ``GET /lastSong/getChannelById/?ch_id=-<category>`` (no token): the same songs, oldest first."""
    _finished(live)
    wait_for("every Icecast song", lambda: len(live.results(1)) >= 3, 30)
    category = derive_longpoll_category(live.token, 1)
    resp = live.http.get(f"{live.server.url}/lastSong/getChannelById/", params={"ch_id": f"-{category}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["StringId"] == category and body["History"]["OldestElement"] == 0
    elements = body["History"]["Elements"]
    results = live.results(1)
    assert [e["title"] for e in elements] == [r["results"][0]["title"] for r in results]
    for e, r in zip(elements, results, strict=True):
        assert (e["radio_id"], e["timestamp"], e["play_length"]) == (1, r["timestamp"], r["play_length"])
        assert e["artist"] == r["results"][0]["artist"] and isinstance(e["score"], int)


def test_icecast_outage_is_notified_and_recovered(live: Live) -> None:
    _finished(live)
    wait_for("the recovery notification", lambda: any(n["notification_code"] == 0 for n in live.notifications(1)), 30)
    codes = [(n["notification_code"], n["stream_running"]) for n in live.notifications(1)]
    assert codes[:2] == [(650, False), (0, True)]


def test_receiver_down_still_gets_everything_in_order(live: Live) -> None:
    _finished(live)
    assert live.receiver_was_down_for > 2
    wait_for("every callback", lambda: len(live.results(1)) >= 3 and len(live.results(2)) >= 2, 30)
    bodies = live.receiver.snapshot()
    assert all(p == "/hook?secret=s3" for p in live.receiver.paths)  # the URL's query string is kept
    for body in bodies:  # every body parses with the official SDK
        match, notification = parse_callback(body)
        assert (match is None) != (notification is None)
    # Longpoll holds the same events, in the same order.
    category = derive_longpoll_category(live.token, 1)
    since, seen = 0, []
    while True:
        body = live.http.get(
            f"{live.server.url}/longpoll/", params={"category": category, "timeout": 1, "since_time": since}
        ).json()
        if "events" not in body:
            assert body["timeout"] == "no events before timeout"
            break
        assert body["events"][0]["category"] == category and body["events"][0]["data"]["status"] in ("success", "-")
        seen.append(body["events"][0]["data"])
        since = body["timestamp"]
    mine = [b for b in bodies if (b.get("result") or b.get("notification") or {}).get("radio_id") == 1]
    assert seen == mine


def test_sdk_longpoll_and_stream_methods(live: Live, pieces: list[Piece]) -> None:
    streams = {s.radio_id: s for s in live.sdk.streams.list()}
    assert set(streams) == {1, 2}
    assert streams[1].longpoll_category == derive_longpoll_category(live.token, 1)
    with live.sdk.streams.longpoll(radio_id=1, since_time=0, timeout=2) as poll:
        match = next(iter(poll.matches))
    assert match.radio_id == 1 and match.song is not None and match.song.title == pieces[0].title
    assert live.sdk.streams.get_callback_url() == live.receiver.url
    with _sdk_http(live.server) as client:
        _other_token_methods(audd.AudD(live.server.token("other"), httpx_client=client))


def _other_token_methods(other: audd.AudD) -> None:
    with pytest.raises(audd.AudDAPIError) as err:
        other.streams.get_callback_url()
    assert err.value.error_code == 19
    other.streams.add("http://127.0.0.1:9/a.mp3", 10)
    other.streams.set_url(10, "http://127.0.0.1:9/b.mp3")
    other.streams.add("http://127.0.0.1:9/c.mp3", 11)
    other.streams.add("http://127.0.0.1:9/d.mp3", 12)
    with pytest.raises(audd.AudDAPIError) as err:
        other.streams.add("http://127.0.0.1:9/e.mp3", 13)
    assert err.value.error_code == 902
    assert next((s.radio_id, s.url) for s in other.streams.list()) == (10, "http://127.0.0.1:9/b.mp3")
    for radio_id in (10, 11, 12):
        other.streams.delete(radio_id)
    assert other.streams.list() == []


def _sdk_http(server: Server) -> httpx.Client:
    return httpx.Client(transport=HostRewrite(server.url), timeout=60)


def test_streams_survive_a_restart(live: Live) -> None:
    _finished(live)
    wait_for("every callback", lambda: len(live.results(1)) >= 3, 30)
    before = len(live.notifications(1))
    stop_server(live.server)
    restarted = start_server(live.server.db, live.server.log.parent / "server2.log", "--allow-private-urls", env=ENV)
    client = _sdk_http(restarted)
    try:
        sdk = audd.AudD(live.token, httpx_client=client, max_retries=1)
        assert {s.radio_id for s in sdk.streams.list()} == {1, 2}
        assert sdk.streams.get_callback_url() == live.receiver.url
        # The monitor is started again: the Icecast mount is gone now, which it reports afresh.
        wait_for("a notification from the restarted monitor", lambda: len(live.notifications(1)) > before, 20)
        assert live.notifications(1)[-1]["notification_code"] == 650
    finally:
        client.close()
        stop_server(restarted)
