"""Rendering a page: the Jinja2 templates (autoescaped) inside the base layout, with the security
headers; the navigation is listed here once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from soundmark import __version__
from soundmark.web.security import secure
from soundmark.web.session import Visitor


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str


NAVIGATION = (
    NavItem("/", "Listen"),
    NavItem("/catalog", "Catalog"),
    NavItem("/streams", "Stations"),
    NavItem("/reports", "Reports"),
    NavItem("/jobs", "Jobs"),
    NavItem("/tokens", "Tokens"),
)


class Pages:
    """The web app's templates (``web/templates``), loaded from the installed package."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("soundmark.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(
        self, request: Request, template: str, visitor: Visitor, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        """The page ``template`` for ``visitor``; any page with a form or a session is not cached."""
        html = self.env.get_template(template).render(
            request_path=request.url.path, navigation=NAVIGATION, visitor=visitor, version=__version__, **context
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Vary"] = "Accept, Cookie"
        return secure(response, private=True)  # type: ignore[return-value]


def pages_of(request: Request) -> Pages:
    """The app's ``Pages`` (set by ``web.install``)."""
    pages: Pages = request.app.state.soundmark_web
    return pages
