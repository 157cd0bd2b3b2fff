"""The web app: browser pages on the API's server, over the same use cases (``services/``).

``install(app, settings)`` mounts it before the AudD methods (which catch every path): the Listen
page at ``/`` for a browser only (``browser.py``), the login and admin pages, and the static
assets under ``/static`` (all local; no CDN). Every page carries the security headers of
``security.py``; admin pages need a session (``session.py``) and every form a CSRF token.
"""

from soundmark.web.routes import install

__all__ = ["install"]
