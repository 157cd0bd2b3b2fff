"""``/`` serves the Listen page to a browser only; every API request answers as before. Every web
page and asset carries the security headers, and no page holds an inline script."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from browser import WebServer, http_log_in

from soundmark.web.security import CONTENT_SECURITY_POLICY

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
PUBLIC_PAGES = ["/", "/login", "/catalog"]
ADMIN_PAGES = ["/streams", "/reports", "/jobs", "/tokens", "/catalog/duplicates"]
PAGES = PUBLIC_PAGES + ADMIN_PAGES


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/", {"Accept": "*/*", "User-Agent": "curl/8.5.0"}, None),  # curl's defaults
        ("GET", "/", {}, None),
        ("GET", "/?api_token=", {"Accept": BROWSER_ACCEPT}, None),  # API parameters: the API
        ("GET", "/?return=spotify", {"Accept": BROWSER_ACCEPT}, None),
        ("POST", "/", {"Accept": BROWSER_ACCEPT}, {"return": "spotify"}),  # a form POST: the API
        ("GET", "/", {"Accept": "application/json"}, None),
        ("GET", "/", {"Accept": "text/html;q=0"}, None),
    ],
)
def test_api_requests_to_root_answer_as_before(
    web: WebServer, method: str, path: str, headers: dict[str, str], body: dict[str, str] | None
) -> None:
    answer = httpx.request(method, web.url + path, headers=headers, data=body)
    assert answer.status_code == 200
    assert "Accept" in answer.headers["vary"]  # a cache keeps the page and the JSON apart
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["error_code"] == 700 and "you haven't sent a file" in error["error_message"]


def test_a_browser_gets_the_listen_page(web: WebServer) -> None:
    answer = httpx.get(web.url + "/", headers={"Accept": BROWSER_ACCEPT})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert 'id="mic"' in answer.text and "Accept" in answer.headers["vary"]


def test_other_api_paths_are_untouched(web: WebServer) -> None:
    assert httpx.get(web.url + "/healthz").json()["status"] == "ok"
    unknown = httpx.get(web.url + "/noSuchMethod/", headers={"Accept": BROWSER_ACCEPT}).json()
    assert unknown["error"]["error_code"] == 50
    assert "/" in httpx.get(web.url + "/openapi.json").json()["paths"]


class _Scripts(HTMLParser):
    """Every <script> (its src, and whether it has a body) and every on* handler attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.inline: list[str] = []
        self.handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"{tag} {k}" for k, _ in attrs if k.lower().startswith("on")]
        self.handlers += [f"{tag} {k}" for k, v in attrs if v and v.strip().lower().startswith("javascript:")]
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))
            self._in_script = True
        if tag == "style" or (tag == "link" and dict(attrs).get("href", "").startswith(("http:", "https:", "//"))):
            self.inline.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(data.strip()[:40])


@pytest.fixture(scope="module")
def admin(web: WebServer) -> Iterator[httpx.Client]:
    with httpx.Client(headers={"Accept": BROWSER_ACCEPT}) as client:
        http_log_in(client, web.url, web.token("routing", "admin"))
        yield client


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_the_csp_and_no_inline_script(web: WebServer, admin: httpx.Client, path: str) -> None:
    answer = (
        admin.get(web.url + path)
        if path in ADMIN_PAGES
        else httpx.get(web.url + path, headers={"Accept": BROWSER_ACCEPT})
    )
    assert answer.status_code == 200
    h = answer.headers
    assert h["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline" not in h["content-security-policy"]
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "same-origin"
    parsed = _Scripts()
    parsed.feed(answer.text)
    assert not parsed.inline and not parsed.handlers, (parsed.inline, parsed.handlers)
    assert all(src and src.startswith("/static/") for src in parsed.scripts), parsed.scripts
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+)"', answer.text):
        served = httpx.get(web.url + asset)
        assert served.status_code == 200 and served.headers["x-content-type-options"] == "nosniff", asset


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_send_a_browser_to_login(web: WebServer, path: str) -> None:
    answer = httpx.get(web.url + path, headers={"Accept": BROWSER_ACCEPT})
    assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"


def test_static_assets_are_local(web: WebServer) -> None:
    js = httpx.get(web.url + "/static/listen.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert "importScripts" not in js.text and "cdn" not in js.text.lower()
    assert httpx.get(web.url + "/static/%2e%2e/session.py").status_code == 404  # no way out of static/


def test_admin_pages_send_visitors_to_login(web: WebServer) -> None:
    answer = httpx.get(web.url + "/tokens")
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/tokens"
    assert httpx.post(web.url + "/tokens", data={"name": "x"}).status_code == 303
    login = httpx.get(web.url + "/login")
    assert "soundmark_login_csrf" in login.headers["set-cookie"]
    assert "httponly" in login.headers["set-cookie"].lower()


def test_a_broken_form_is_a_clear_page(web: WebServer) -> None:
    answer = httpx.post(
        web.url + "/login", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert answer.status_code in (400, 403) and answer.headers["content-type"].startswith("text/html")
    assert "Nothing was changed" in answer.text
    big = httpx.post(web.url + "/login", data={"token": "x" * 100_000})
    assert big.status_code == 400 and "too large" in big.text


def _login_over(web: WebServer, token: str, headers: dict[str, str]) -> httpx.Response:
    form = httpx.get(web.url + "/login", headers=headers)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None and form.cookies["soundmark_login_csrf"] == csrf.group(1)
    # The cookie by hand: over "https" it is Secure, which httpx would not send to an http:// URL.
    sent = {**headers, "Cookie": f"soundmark_login_csrf={csrf.group(1)}"}
    return httpx.post(web.url + "/login", data={"csrf": csrf.group(1), "token": token, "next": "/tokens"}, headers=sent)


def test_the_session_cookie_is_secure_over_https(web: WebServer) -> None:
    """Behind a TLS proxy on the same host (uvicorn trusts 127.0.0.1's X-Forwarded-Proto) the
    cookie is Secure; over plain http it cannot be, or the browser would never send it back."""
    token = web.token("cookie-admin", "admin")
    plain = _login_over(web, token, {})
    assert plain.status_code == 303 and plain.headers["location"] == "/tokens"
    cookie = next(v for v in plain.headers.get_list("set-cookie") if v.startswith("soundmark_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    tls = _login_over(web, token, {"X-Forwarded-Proto": "https"})
    cookie = next(v for v in tls.headers.get_list("set-cookie") if v.startswith("soundmark_session="))
    assert "Secure" in cookie and "HttpOnly" in cookie
