"""Every page of the navigation in Chromium at desktop and phone width, as the admin sees it: it
renders without a CSP violation, and at phone width the menu opens to reach the other pages."""

from __future__ import annotations

from browser import PHONE, Console, WebServer, chromium, log_in, screenshots
from playwright.sync_api import Playwright, expect

from soundmark.web.pages import NAVIGATION


def test_every_page_renders_at_both_widths(pw: Playwright, web: WebServer) -> None:
    console = Console()
    with chromium(pw) as browser:
        page = console.watch(browser.new_page())
        log_in(page, web.url, web.token("pages-admin", "admin"), "/tokens")
        for item in NAVIGATION:
            page.goto(web.url + item.path)
            expect(page.locator("h1")).to_be_visible()
            name = "listen" if item.path == "/" else item.path.strip("/")
            screenshots(page, f"page-{name}")
    assert not console.csp_violations(), console.lines


def test_phone_menu_reaches_the_other_pages(pw: Playwright, web: WebServer) -> None:
    with chromium(pw, viewport=PHONE) as browser:
        page = browser.new_page()
        page.goto(web.url + "/")
        stations = page.locator("nav a", has_text="Stations")
        expect(stations).to_be_hidden()  # folded away at 390 px
        page.click("label.nav-button")
        expect(stations).to_be_visible()
        screenshots(page, "phone-menu")
        stations.click()
        expect(page).to_have_url(web.url + "/login?next=/streams")  # an admin page: log in first
        expect(page.locator("h1")).to_have_text("Log in")
