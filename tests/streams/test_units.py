"""Stream monitoring pieces without a network: the song tracker, the event store, longpoll
answers, callback bodies, and the CLI on a store."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from pathlib import Path

from audd._callbacks import derive_longpoll_category, parse_callback
from click.testing import CliRunner

from soundmark.audd.models import wire
from soundmark.auth.tokens import TokenStore
from soundmark.cli.main import cli
from soundmark.fingerprint.params import FingerprintParams
from soundmark.services.recognition_pool import WorkerMatch
from soundmark.store import Store
from soundmark.streams.callbacks import notification_payload, percent_score, result_payload
from soundmark.streams.longpoll import LongpollHub
from soundmark.streams.registry import DELIVERED, PENDING, StreamStore, longpoll_category, token_md5
from soundmark.streams.tracker import SongTracker


def m(track: int, offset: float, score: float = 50.0) -> WorkerMatch:
    return WorkerMatch(track, offset, score, 1.0, 1.0)


def test_category_matches_the_sdk() -> None:
    token = "d29ebb205488e3b414bcc0c50432463e"
    assert longpoll_category(token_md5(token), 1) == "088719f57" == derive_longpoll_category(token, 1)


def test_tracker_reports_each_song_once_with_its_start() -> None:
    t = SongTracker(gap=8, hop=4)
    changes = []
    # Song 1 (60 s long) started at t=100; windows of 8 s every 4 s from t=104.
    for k in range(6):
        t0 = 104 + 4 * k
        changes += t.window(t0, t0 + 8, [m(1, t0 - 100)], 60.0)
    # Song 2 starts at t=130: a window straddling it gives a clamped offset (0), then exact ones.
    changes += t.window(128, 136, [m(2, 0.0)], 60.0)
    changes += t.window(132, 140, [m(2, 2.0)], 60.0)
    changes += t.window(136, 144, [m(2, 6.0)], 60.0)
    changes += t.nothing(140, 148)
    changes += t.flush()
    ends = [c.play for c in changes if c.kind == "end"]
    assert [p.track_id for p in ends] == [1, 2]
    # Song 1 was on air before the first window, so it was first heard at t=104; song 2 at t=130.
    assert abs(ends[0].start - 104) < 0.01 and abs(ends[1].start - 130) < 0.01
    assert [c.play.track_id for c in changes if c.kind == "announce"] == [1, 2]


def test_a_song_that_begins_inside_a_window_is_first_heard_where_it_began() -> None:
    """After unknown audio (no previous song to bound it), the first window that recognises a
    song may hold only its first seconds: the song's negative offset (``lead_seconds``) places
    its start inside the window, not at the window's start 6 s before it went on air."""
    t = SongTracker(gap=8, hop=4, floor=0.0)
    assert t.nothing(192, 200) == []
    changes = t.window(200, 208, [WorkerMatch(3, 0.0, 40.0, 1.0, 1.0, lead_seconds=6.0)], 60.0)
    changes += t.window(204, 212, [m(3, 2.0)], 60.0)
    changes += t.flush()
    ends = [c.play for c in changes if c.kind == "end"]
    assert [p.track_id for p in ends] == [3]
    assert abs(ends[0].start - 206.0) < 0.01


def test_tracker_reports_what_was_heard_not_the_song_before_it() -> None:
    """A radio plays 45 s of each song, joining it 60 s in; monitoring began at t=0 with song 1
    already 30 s on air. Reported: when each song was first heard and for how long (issue 9, item 7)."""
    window, hop = 10.0, 5.0
    on_air = [(1, -30.0, 45.0), (2, 45.0, 90.0), (3, 90.0, 135.0)]  # (track, from, to), each from 60 s in
    t = SongTracker(gap=12, hop=hop, floor=0.0)
    changes = []
    for k in range(34):  # windows [0, 10] ... [165, 175]; unknown audio after t=135
        t0 = k * hop
        mid = t0 + window / 2
        playing = [(track, a) for track, a, b in on_air if a <= mid < b]
        if playing:
            track, a = playing[0]
            changes += t.window(t0, t0 + window, [m(track, t0 - a + 60.0)], 200.0)
        else:
            changes += t.nothing(t0, t0 + window)
    changes += t.flush()
    ends = [c.play for c in changes if c.kind == "end"]
    assert [p.track_id for p in ends] == [1, 2, 3]
    for play, (_, a, b) in zip(ends, on_air, strict=True):
        assert play.start >= 0.0  # never before monitoring began
        assert abs(play.start - max(a, 0.0)) <= window
        assert abs(play.play_length - (b - max(a, 0.0))) <= window


def test_tracker_ends_a_song_after_a_gap_of_unknown_audio() -> None:
    t = SongTracker(gap=8, hop=4)
    assert [c.kind for c in t.window(0, 8, [m(1, 10)], 300.0)] == ["announce"]
    assert t.nothing(4, 12) == []  # heard until about t=6; a gap of 8 s has not passed yet
    assert [c.kind for c in t.nothing(8, 16)] == ["end"]
    assert t.window(20, 28, [m(1, 30)], 300.0) == []  # the same play heard again: not reported twice


def test_events_longpoll_and_prune(tmp_path: Path) -> None:
    with Store(tmp_path / "db", FingerprintParams(), create=True) as store:
        _, info = TokenStore(store.catalog).create("radio")
    streams = StreamStore(tmp_path / "db")
    cat = longpoll_category("x" * 32, 7)
    streams.add_event(info.id, 7, cat, "notification", notification_payload(7, 650, "down", False))
    streams.set_callback_url(info.id, "x" * 32, "http://127.0.0.1:9/hook")
    body = result_payload(7, _play(), [{"artist": "A", "title": "T", "score": 90}], "UTC", with_length=True)
    stamp = streams.add_event(info.id, 7, cat, "result", body)
    assert [e.kind for e in streams.due_events(1e12)] == ["result"]  # the first had no callback URL: skipped

    async def poll(since: int | None, timeout: float) -> dict:
        answer: dict = wire(await LongpollHub(streams).wait(cat, timeout, since))
        return answer

    first = asyncio.run(poll(0, 1))
    assert first["notification"]["notification_code"] == 650 and first["events"][0]["category"] == cat
    second = asyncio.run(poll(first["timestamp"], 1))
    assert second["timestamp"] == stamp and parse_callback(second)[0].song.title == "T"
    timeout = asyncio.run(poll(stamp, 0.2))
    assert timeout["timeout"] == "no events before timeout" and timeout["timestamp"] > stamp

    for _ in range(150):
        streams.add_event(info.id, 7, cat, "result", body)
    for ev in streams.due_events(1e12, limit=100):
        streams.mark(ev.id, DELIVERED)
    streams.prune(max_events=100, max_age_s=3600)
    with closing(sqlite3.connect(tmp_path / "db" / "catalog.sqlite")) as conn:  # what another process sees
        rows = conn.execute("SELECT state, COUNT(*) FROM stream_events GROUP BY state").fetchall()
    counts = {r[0]: r[1] for r in rows}
    assert sum(counts.values()) == 100 and counts[PENDING] == 51  # the delivered went first
    streams.close()


def _play():  # type: ignore[no-untyped-def]
    from soundmark.streams.tracker import Play

    return Play(1, 1_700_000_000.0, 1_700_000_100.0, 200.0, m(1, 5.0))


def test_timestamps_follow_the_zone_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from pydantic import ValidationError

    from soundmark.settings import Settings

    play = _play()  # first heard at 2023-11-14 22:13:20 UTC
    stamp = lambda tz: result_payload(7, play, [], tz, with_length=True)["result"]["timestamp"]  # noqa: E731
    assert Settings().callback_timezone == "+03:00"  # what AudD's own clients read timestamps in
    assert stamp(Settings().callback_timezone) == "2023-11-15 01:13:20"
    assert stamp("UTC") == "2023-11-14 22:13:20"
    assert stamp("Europe/Moscow") == "2023-11-15 01:13:20" and stamp("-05:30") == "2023-11-14 16:43:20"
    monkeypatch.setenv("SOUNDMARK_CALLBACK_TIMEZONE", "America/New_York")
    assert stamp(Settings().callback_timezone) == "2023-11-14 17:13:20"
    monkeypatch.setenv("SOUNDMARK_CALLBACK_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError):
        Settings()


def test_recent_results_for_getchannelbyid(tmp_path: Path) -> None:
    with Store(tmp_path / "db", FingerprintParams(), create=True) as store:
        _, info = TokenStore(store.catalog).create("radio")
    streams = StreamStore(tmp_path / "db")
    md5 = "x" * 32
    cat = longpoll_category(md5, 7)
    assert streams.recent_results(cat) is None  # no such stream
    streams.add_stream(info.id, md5, 7, "http://radio.example/live", None)
    assert streams.recent_results(cat) == []
    streams.add_event(info.id, 7, cat, "notification", notification_payload(7, 650, "down", False))
    for k in range(45):
        song = {"artist": "A", "title": f"T{k}", "score": 90}
        streams.add_event(info.id, 7, cat, "result", result_payload(7, _play(), [song], "UTC", with_length=True))
    recent = streams.recent_results(cat)
    assert recent is not None and [e["title"] for e in recent] == [f"T{k}" for k in range(5, 45)]  # last 40
    assert recent[0] == {"radio_id": 7, "timestamp": "2023-11-14 22:13:20", "play_length": 100,
                         "artist": "A", "title": "T5", "score": 90}  # fmt: skip
    streams.close()


def test_percent_score_is_an_int_scale() -> None:
    assert percent_score(6.0, 6.0) == 50 and percent_score(12.0, 6.0) == 75
    assert percent_score(1000.0, 6.0) == 100 and percent_score(0.0, 6.0) == 0


def test_cli_add_list_remove(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Store(db, FingerprintParams(), create=True) as store:
        token, _ = TokenStore(store.catalog).create("radio")
    run = CliRunner().invoke
    # The API's rules: a loopback URL is refused unless private addresses are allowed.
    add = ["stream", "add", "--db", str(db), "--token", token, "--radio-id", "5", "http://127.0.0.1:9/live"]
    res = run(cli, add)
    assert res.exit_code != 0 and "non-public address" in res.output
    res = run(cli, add, env={"SOUNDMARK_ALLOW_PRIVATE_URLS": "1"})
    assert res.exit_code == 0, res.output
    res = run(cli, ["stream", "list", "--db", str(db), "--json"])
    assert json.loads(res.output) == [{"radio_id": 5, "url": "http://127.0.0.1:9/live", "stream_running": False,
                                       "longpoll_category": derive_longpoll_category(token, 5)}]  # fmt: skip
    res = run(cli, ["stream", "remove", "--db", str(db), "--token", token, "--radio-id", "5"])
    assert res.exit_code == 0 and "removed" in res.output
    res = run(cli, ["stream", "add", "--db", str(db), "--token", "nope-nope", "--radio-id", "5", "http://x/"])
    assert res.exit_code != 0 and "token" in res.output
    for sub in ("add", "list", "remove", "watch"):
        assert run(cli, ["stream", sub, "--help"]).exit_code == 0


def test_a_longpoll_answer_is_the_stored_callback_json_byte_for_byte() -> None:
    """The answer built from the response models (``event_answer``) is golongpoll's dict around
    the stored body, byte for byte: songs' provider blocks in the order ``return`` asked, a
    song with metadata and one custom-catalog song, and a notification."""
    from starlette.responses import JSONResponse

    from soundmark.catalog.models import Track, TrackMeta
    from soundmark.streams.callbacks import song_dict
    from soundmark.streams.longpoll import event_answer
    from soundmark.streams.registry import Event

    external = {"spotify_id": "4RvWPyQ5RL0ao9LPZeSouE", "apple_music_id": "1440826582"}
    meta = TrackMeta(title="Everybody Wants", artist="Tears For Fears", album="Big Chair", isrc="GBUM71403885",
                     external=external)  # fmt: skip
    described = song_dict(WorkerMatch(7, 31.46, 40.0, 1.0, 1.0), Track(id=7, meta=meta, duration=250.0),
                          "http://radio.example", ["spotify", "apple_music"], "us", 20.0)  # fmt: skip
    custom = song_dict(WorkerMatch(8, 3.0, 25.0, 1.02, 1.0), Track(id=8, meta=TrackMeta(audio_id=146), duration=9.0),
                       "http://radio.example", [], "us", 20.0)  # fmt: skip
    blocks = [k for k in described if k in ("spotify", "apple_music")]
    assert blocks == ["spotify", "apple_music"]  # not the models' field order: the order is restored
    result = result_payload(7, _play(), [described, custom], "UTC", with_length=True)
    notification = notification_payload(7, 650, "Recognition failed: can't connect", False)
    for n, body in enumerate([result, notification], 1):
        stored = json.loads(json.dumps(body, ensure_ascii=False))  # as the registry keeps it
        event = Event(n, 1, 7, "abc123def", "result" if n == 1 else "notification", stored, 1_700_000_000_123, 0)
        expected = {
            "events": [{"timestamp": 1_700_000_000_125, "category": "abc123def", "data": body, "id": str(n)}],
            "timestamp": 1_700_000_000_125,
            **body,
        }
        answer = event_answer(event, 1_700_000_000_125)
        assert JSONResponse(wire(answer)).body == JSONResponse(expected).body
