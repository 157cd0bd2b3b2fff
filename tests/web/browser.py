"""Debian's Chromium driven by Playwright (no browser download), a real ``soundmark serve`` on a
demo catalog, and the screenshots the tests leave as artifacts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import live_server
from playwright.sync_api import BrowserContext, Page, Playwright, expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
DESKTOP = {"width": 1280, "height": 900}
FIRST_TITLE = "Phase Locked Heart"  # the demo catalog's first track (soundmark demo)
PHONE = {"width": 390, "height": 844}


def artifacts() -> Path:
    out = Path(os.environ.get("SOUNDMARK_ARTIFACTS", "/tmp/soundmark-artifacts")) / "web"
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class WebServer:
    url: str
    db: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "soundmark", *args, "--db", str(self.db)], capture_output=True, text=True, check=True
        )
        return out.stdout

    def token(self, name: str, scopes: str) -> str:
        """A new token made with ``soundmark token create`` (the last line it prints)."""
        return self.cli("token", "create", "--name", name, "--scopes", scopes).strip().splitlines()[-1]


def start_server(db: Path, log: Path, *flags: str) -> WebServer:
    """A real ``soundmark serve`` (the API tests' starter, tests/api/live_server.py)."""
    s = live_server.start_server(db, log, *flags)
    return WebServer(s.url, s.db, s.log, s.proc)


def stop_server(server: WebServer) -> None:
    live_server.stop_server(live_server.Server(server.url, server.db, server.log, server.proc))


@dataclass
class Console:
    """What the pages wrote to the console (a CSP violation shows up here)."""

    lines: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("console", lambda m: self.lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.lines.append(f"pageerror: {e}"))
        return page

    def csp_violations(self) -> list[str]:
        return [line for line in self.lines if "Content Security Policy" in line or "pageerror" in line]


@contextmanager
def chromium(pw: Playwright, *args: str, viewport: dict[str, int] | None = None) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile and ``args`` (e.g. the fake microphone's)."""
    profile = Path(tempfile.mkdtemp(prefix="soundmark-chromium-"))
    try:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *args],
            viewport=viewport or DESKTOP,  # type: ignore[arg-type]
        )  # fmt: skip
        try:
            yield context
        finally:
            context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def fake_microphone(wav: Path, *, allow: bool = True) -> list[str]:
    """Chromium's flags for a microphone that plays ``wav`` (looped); ``allow``: grant it without
    asking (else the permission request goes unanswered: denied in a headless browser)."""
    flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
    return [*flags, "--use-fake-ui-for-media-stream"] if allow else flags


def screenshots(page: Page, name: str) -> None:
    """``<name>-desktop.png`` (1280 wide) and ``<name>-phone.png`` (390 wide), full page."""
    out = artifacts()
    size = page.viewport_size or DESKTOP
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    page.screenshot(path=str(out / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.screenshot(path=str(out / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)  # type: ignore[arg-type]


def log_in(page: Page, url: str, token: str, path: str) -> None:
    """Open the admin page ``path``: it sends the browser to the login form, which comes back."""
    page.goto(url + path)
    expect(page).to_have_url(url + "/login?next=" + path)
    page.fill("#token", token)
    page.click("#login-submit")
    expect(page).to_have_url(url + path)


def http_log_in(client: httpx.Client, url: str, token: str, path: str = "/") -> None:
    """Log ``client`` in through the real login form (its CSRF field and cookie)."""
    form = client.get(url + "/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    answer = client.post(url + "/login", data={"csrf": csrf.group(1), "token": token, "next": path})
    assert answer.status_code == 303 and answer.headers["location"] == path, answer.text


def wait_until(page: Page, expression: str, timeout_s: float = 30.0) -> None:
    """Wait until a JavaScript ``expression`` is truthy on ``page``. Polled from Python with
    ``page.evaluate`` (the DevTools protocol, which the page's CSP does not govern):
    ``page.wait_for_function`` re-evaluates a string predicate with the page's own ``eval``, which
    ``script-src 'self'`` refuses as soon as the first check is false."""
    from support import wait_for

    wait_for(expression, lambda: bool(page.evaluate(expression)), timeout_s, poll=0.1)
