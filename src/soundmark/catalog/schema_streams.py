"""Migration 4: live stream monitoring — callback URLs, streams, and the durable event queue.

``stream_events`` is both the callback outbox and the longpoll history: an event is written once
(``created_ms`` is a strictly increasing millisecond stamp, golongpoll's ``timestamp``), then
delivered to the account's callback URL (``state`` pending → delivered, or skipped when no URL
is set, or expired when it could not be delivered in time). The table is bounded by pruning the
oldest finished events.
"""

MIGRATION = """
CREATE TABLE stream_accounts (
    token_id INTEGER PRIMARY KEY,
    token_md5 TEXT NOT NULL,          -- md5 hex of the api_token: longpoll categories derive from it
    callback_url TEXT,                -- kept with its query string (e.g. ?return=...&secret=...)
    updated_at REAL NOT NULL
);
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL,
    radio_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    callbacks TEXT,                   -- 'before': report a song when it starts; NULL: when it ends
    category TEXT NOT NULL,           -- md5(md5(token) + radio_id)[:9]
    running INTEGER NOT NULL DEFAULT 0,
    status_code INTEGER,              -- last notification code (0 healthy, 650, 651)
    status_message TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (token_id, radio_id)
);
CREATE TABLE stream_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL,
    radio_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    kind TEXT NOT NULL,               -- 'result' | 'notification'
    payload TEXT NOT NULL,            -- the callback JSON body
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | skipped | expired
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX stream_events_category ON stream_events(category, created_ms);
CREATE INDEX stream_events_pending ON stream_events(state, next_attempt_at);
"""
