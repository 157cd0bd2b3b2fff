"""Admin login in Chromium (an admin-scope token exchanged for a session cookie), the Tokens page,
CSRF refusals, logout and a revoked token's session refused."""

from __future__ import annotations

import json

import httpx
from browser import Console, WebServer, chromium, log_in, screenshots
from playwright.sync_api import BrowserContext, Page, Playwright, expect

from soundmark.web.session import SESSION_COOKIE


def _login(page: Page, web: WebServer, token: str) -> None:
    log_in(page, web.url, token, "/tokens")
    expect(page.locator("h1")).to_have_text("API tokens")


def _session_cookie(context: BrowserContext) -> dict[str, object]:
    return next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)  # type: ignore[return-value]


def test_admin_login_opens_the_tokens_page(pw: Playwright, web: WebServer) -> None:
    token = web.token("web-admin", "admin")
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        page.goto(web.url + "/login")
        screenshots(page, "login")
        _login(page, web, token)
        cookie = _session_cookie(browser)
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["value"] != token
        rows = page.locator("#tokens tbody tr")
        assert "web-admin" in " ".join(rows.all_inner_texts())
        expect(page.locator("#logout")).to_be_visible()
        # A token made here is shown once, then listed by its prefix only.
        page.fill("#name", "studio-app")
        page.fill("#scopes", "recognize")
        page.click("#create-form button[type=submit]")
        new_token = page.locator("#new-token").inner_text().strip()
        assert len(new_token) >= 40
        ok = httpx.post(web.url + "/", data={"api_token": new_token}).json()
        assert ok["error"]["error_code"] == 700  # authorised (no audio sent), not 900
        screenshots(page, "tokens")
        page.goto(web.url + "/tokens")
        assert new_token not in page.content()
        # Revoke it from the page: the API refuses it from then on.
        row = page.locator("#tokens tbody tr", has_text="studio-app")
        row.locator("button", has_text="Revoke").click()
        expect(page.locator("#tokens tbody tr.revoked", has_text="studio-app")).to_be_visible()
        assert httpx.post(web.url + "/", data={"api_token": new_token}).json()["error"]["error_code"] == 900
    assert not console.csp_violations(), console.lines


def test_a_token_without_admin_scope_cannot_log_in(pw: Playwright, web: WebServer) -> None:
    token = web.token("plain-user", "recognize")
    with chromium(pw) as browser:
        page = browser.new_page()
        page.goto(web.url + "/login")
        page.fill("#token", token)
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_have_text("This token is not an admin token.")
        page.fill("#token", "not-a-token-at-all")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_have_text("Unknown or revoked token.")
        assert not [c for c in browser.cookies() if c["name"] == SESSION_COOKIE]


def test_posts_without_the_csrf_token_are_refused(pw: Playwright, web: WebServer) -> None:
    token = web.token("csrf-admin", "admin")
    victim = web.token("csrf-victim", "recognize")
    listed = [json.loads(line) for line in web.cli("token", "list", "--json").splitlines() if line.strip()]
    victim_id = next(t["id"] for t in listed if t["name"] == "csrf-victim")
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, web, token)
        cookies = {SESSION_COOKIE: str(_session_cookie(browser)["value"])}
        csrf = page.locator("#create-form input[name=csrf]").input_value()
        # The session cookie alone (what a cross-site form would carry) is not enough.
        with httpx.Client(base_url=web.url, cookies=cookies) as http:
            refused = http.post("/tokens/revoke", data={"id": str(victim_id)})
            assert refused.status_code == 403
            assert "security check failed" in refused.text and "Nothing was changed" in refused.text
            assert "'self'" in refused.headers["content-security-policy"]
            wrong = http.post("/tokens/revoke", data={"id": str(victim_id), "csrf": csrf[:-2] + "xx"})
            assert wrong.status_code == 403
            other_site = http.post(
                "/tokens/revoke", data={"id": str(victim_id), "csrf": csrf}, headers={"Origin": "https://evil.example"}
            )
            assert other_site.status_code == 403
            no_login_csrf = http.post("/login", data={"token": token})
            assert no_login_csrf.status_code == 403
        assert httpx.post(web.url + "/", data={"api_token": victim}).json()["error"]["error_code"] == 700
        page.goto(web.url + "/tokens")
        screenshots(page, "tokens-admin")
        # The page's own form (with its token) does revoke.
        page.locator("#tokens tbody tr", has_text="csrf-victim").locator("button").click()
        expect(page.locator("#tokens tbody tr.revoked", has_text="csrf-victim")).to_be_visible()
        assert httpx.post(web.url + "/", data={"api_token": victim}).json()["error"]["error_code"] == 900


def test_logout_ends_the_session(pw: Playwright, web: WebServer) -> None:
    token = web.token("logout-admin", "admin")
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, web, token)
        old = str(_session_cookie(browser)["value"])
        page.click("#logout")
        expect(page).to_have_url(web.url + "/")
        expect(page.locator("#login-link")).to_be_visible()
        assert not [c for c in browser.cookies() if c["name"] == SESSION_COOKIE]
    # The old cookie, replayed, opens nothing: the session row is gone.
    answer = httpx.get(web.url + "/tokens", cookies={SESSION_COOKIE: old})
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/tokens"


def test_revoking_the_admin_token_ends_its_sessions(pw: Playwright, web: WebServer) -> None:
    token = web.token("revoked-admin", "admin")
    with chromium(pw) as browser:
        page = browser.new_page()
        _login(page, web, token)
        web.cli("token", "revoke", token[:6])  # the operator revokes it from the command line
        page.goto(web.url + "/tokens")
        expect(page).to_have_url(web.url + "/login?next=/tokens")
        page.fill("#token", token)
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_have_text("Unknown or revoked token.")
