"""Migration 8: the web app's admin sessions (``auth/sessions.py``).

A session is created when an admin token is exchanged for a cookie at ``/login``. Only the
SHA-256 of the session id is stored (a copy of the catalog does not hand out live sessions); the
CSRF token of the session's forms is kept with it. Deleting or revoking the token ends its
sessions: rows go with the token (``ON DELETE CASCADE``), and a lookup joins the token and
refuses a revoked one.
"""

MIGRATION = """
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,         -- sha256 hex of the random session id in the cookie
    token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,               -- the token every form of this session carries
    created_at REAL NOT NULL,         -- unix time
    expires_at REAL NOT NULL          -- unix time; refused from then on, pruned at the next login
);
CREATE INDEX web_sessions_token ON web_sessions(token_id);
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
"""
