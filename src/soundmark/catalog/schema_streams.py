"""Migration 4: live stream monitoring — callback URLs, streams, and the durable event queue."""

MIGRATION = """
CREATE TABLE stream_accounts (
    token_id INTEGER PRIMARY KEY,
    callback_url TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    token_id INTEGER NOT NULL,
    radio_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    callbacks TEXT,
    return_params TEXT,
    created_at REAL NOT NULL,
    UNIQUE (token_id, radio_id)
);
CREATE TABLE stream_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_id INTEGER NOT NULL,
    radio_id INTEGER NOT NULL,
    category TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    delivered_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX stream_events_category ON stream_events(category, id);
CREATE INDEX stream_events_pending ON stream_events(delivered_at, next_attempt_at);
"""
