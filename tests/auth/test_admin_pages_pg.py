"""The web app's admin pages on two API nodes sharing a PostgreSQL catalog: a session opened by
logging in on one node works on the other, every admin page answers there from the shared
catalog (search, browse, a track with its plays, reports and their exports, tokens, stations,
jobs), a token made through one node's form is listed by the CLI, and logging out on one node
ends the session on both."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
from live_server import Server
from shared_nodes import SharedStore, cli

PAGES = [
    "/catalog", "/catalog?q=piece", "/catalog?q=test+band&field=artist", "/catalog?q=pie", "/catalog?sort=artist",
    "/catalog?sort=added", "/catalog/duplicates", "/reports", "/reports/plays.csv", "/reports/tracks.csv",
    "/reports/chart.png", "/tokens", "/streams", "/jobs",
]  # fmt: skip


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def _log_in(client: httpx.Client, server: Server, token: str) -> None:
    answer = client.post(server.url + "/login", data={"csrf": _csrf(client.get(server.url + "/login")),
                                                      "token": token, "next": "/tokens"})  # fmt: skip
    assert answer.status_code == 303 and answer.headers["location"] == "/tokens", answer.text


def test_admin_pages_on_the_other_node(shared_store: SharedStore) -> None:
    a, b = shared_store.start()
    admin = cli(shared_store.env, "token", "create", "--db", str(a.db), "--name", "operator", "--scopes", "admin")
    admin = admin.splitlines()[-1]
    titles = [p.title for p in shared_store.pieces]
    with httpx.Client(timeout=60) as on_a, httpx.Client(timeout=60) as on_b:
        _log_in(on_a, a, admin)
        on_b.cookies = httpx.Cookies(on_a.cookies)  # a copy of the session cookie, sent to the other node

        for path in PAGES:
            answer = on_b.get(b.url + path)
            assert answer.status_code == 200, (path, answer.text[:2000])
        for path in ("/catalog?q=piece", "/catalog?q=pie", "/catalog?sort=artist"):
            page = on_b.get(b.url + path).text
            assert all(t in page for t in titles), (path, page[:2000])
        track_ids = sorted(set(re.findall(r'/catalog/tracks/(\d+)"', on_b.get(b.url + "/catalog").text)))
        assert len(track_ids) == len(titles)
        for tid in track_ids:
            assert on_b.get(f"{b.url}/catalog/tracks/{tid}").status_code == 200

        tokens = on_b.get(b.url + "/tokens")
        made = on_b.post(b.url + "/tokens", data={"csrf": _csrf(tokens), "name": "from-the-form", "limit": "5",
                                                  "scopes": "recognize"})  # fmt: skip
        assert made.status_code == 200 and "from-the-form" in made.text, made.text[:2000]
        listed = cli(shared_store.env, "token", "list", "--db", str(a.db))
        assert "from-the-form" in listed and "operator" in listed

        out = on_a.post(a.url + "/logout", data={"csrf": _csrf(on_a.get(a.url + "/tokens"))})
        assert out.status_code in (302, 303), out.text
        assert len(on_b.cookies.jar) == 1 and len(on_a.cookies.jar) == 0  # node b's browser still sends it
        gone = on_b.get(b.url + "/tokens", follow_redirects=False)
        assert gone.status_code in (302, 303) and "/login" in gone.headers["location"]
        assert on_b.get(b.url + "/reports?" + urlencode({"from": "2026-01-01", "to": "2026-01-02"}),
                        follow_redirects=False).status_code in (302, 303)  # fmt: skip
