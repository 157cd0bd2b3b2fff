"""The web app's admin sessions, kept in the catalog (migration 8, ``catalog/schema_sessions.py``).

A session is a random id (32 bytes from ``secrets``, URL-safe text) that lives in the browser's
cookie; the catalog keeps its SHA-256, the token it was opened with, its CSRF token and when it
expires. A lookup refuses an expired session and one whose token has been revoked or lacks the
scope the session was opened for, so revoking the admin token logs every browser out at once.

Writes (``open``, ``close``, ``prune``) go through the server's one writer; ``find`` is a read.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from soundmark.catalog.sql import Connection

SESSION_BYTES = 32
CSRF_BYTES = 32
_MAX_ID_CHARS = 128  # anything longer is not one of ours: not even hashed


@dataclass(frozen=True)
class WebSession:
    """An open session as a request sees it (never its id)."""

    token_id: int
    token_name: str
    csrf: str
    expires_at: float  # unix time


@dataclass(frozen=True)
class OpenedSession:
    """A new session: the id for the cookie (shown only now) and the session itself."""

    id: str
    session: WebSession


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


class SessionStore:
    """Sessions on one catalog connection (the writer's for writes, a reader's for ``find``)."""

    def __init__(self, conn: Connection):
        self._conn = conn

    def open(self, token_id: int, token_name: str, lifetime_s: float, *, now: float | None = None) -> OpenedSession:
        """A new session for the token ``token_id``, valid ``lifetime_s`` seconds."""
        if lifetime_s <= 0:
            raise ValueError("a session needs a positive lifetime")
        start = time.time() if now is None else now
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        csrf = secrets.token_urlsafe(CSRF_BYTES)
        expires = start + lifetime_s
        self._conn.execute(
            "INSERT INTO web_sessions(id_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (_hash(session_id), token_id, csrf, start, expires),
        )
        return OpenedSession(session_id, WebSession(token_id, token_name, csrf, expires))

    def find(self, session_id: str, scope: str, *, now: float | None = None) -> WebSession | None:
        """The live session ``session_id``: not expired, its token active and holding ``scope``."""
        if not session_id or len(session_id) > _MAX_ID_CHARS or not session_id.isascii():
            return None
        row = self._conn.execute(
            "SELECT s.token_id, t.name, s.csrf, s.expires_at, t.scopes FROM web_sessions s"
            " JOIN tokens t ON t.id = s.token_id"
            " WHERE s.id_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
            (_hash(session_id), time.time() if now is None else now),
        ).fetchone()
        if row is None or scope not in str(row[4]).split(","):
            return None
        return WebSession(int(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def close(self, session_id: str) -> bool:
        """End the session ``session_id`` (logout); False when there was none."""
        if not session_id or len(session_id) > _MAX_ID_CHARS or not session_id.isascii():
            return False
        return self._conn.execute("DELETE FROM web_sessions WHERE id_hash = ?", (_hash(session_id),)).rowcount == 1

    def prune(self, *, now: float | None = None) -> int:
        """Forget expired sessions; returns how many."""
        cutoff = time.time() if now is None else now
        return self._conn.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (cutoff,)).rowcount
