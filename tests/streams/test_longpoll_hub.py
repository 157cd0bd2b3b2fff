"""The longpoll hub wakes the requests of the category an event names (another node's event, by
its NOTIFY payload), every request when none is named, and keeps nothing for a category once
its last request has answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from soundmark.auth.tokens import TokenStore
from soundmark.fingerprint.params import FingerprintParams
from soundmark.store import Store
from soundmark.streams.callbacks import notification_payload
from soundmark.streams.longpoll import LongpollHub
from soundmark.streams.registry import StreamStore, longpoll_category

BODY = notification_payload(1, 650, "Recognition failed: can't connect to the audiostream", False)


def test_a_named_category_wakes_only_its_requests(tmp_path: Path) -> None:
    root = tmp_path / "db"
    with Store(root, FingerprintParams(), create=True) as store:
        _, info = TokenStore(store.catalog).create("radio")
    streams = StreamStore(root)
    a, b = longpoll_category("a" * 32, 1), longpoll_category("b" * 32, 1)
    hub = LongpollHub(streams)

    async def run() -> None:
        since = streams.stamp()
        wait_a = asyncio.create_task(hub.wait(a, 60, since))
        wait_b = asyncio.create_task(hub.wait(b, 60, since))
        await asyncio.sleep(0.3)  # both have looked and wait
        # Written by "another process": nothing in this one publishes it.
        await asyncio.to_thread(streams.add_event, info.id, 1, a, "notification", BODY)
        hub.published(b)  # an event of b's category: a's request does not look again
        await asyncio.sleep(0.3)
        assert not wait_a.done() and not wait_b.done()  # b looked, found nothing, waits on
        hub.published(a)
        answer = await asyncio.wait_for(wait_a, 30)
        assert answer.events[0].category == a  # type: ignore[union-attr]
        await asyncio.to_thread(streams.add_event, info.id, 1, b, "notification", BODY)
        hub.published()  # no category named: every request looks
        answer = await asyncio.wait_for(wait_b, 30)
        assert answer.events[0].category == b  # type: ignore[union-attr]
        assert hub._changed == {} and hub._waiting == {}  # nothing kept for categories no one waits on

    try:
        asyncio.run(run())
    finally:
        streams.close()
