"""Migration 3: long-recording analysis jobs (scan / enterprise), kept across restarts."""

MIGRATION = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT,
    params TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    audio_seconds REAL NOT NULL DEFAULT 0,
    result TEXT,
    error_code INTEGER,
    error_message TEXT,
    token_id INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX jobs_status ON jobs(status, created_at);
"""

# Migration 7: how many times each job was started without reaching an outcome (the
# poison-job guard: a job that took the server down that often is failed, not resumed again).
ATTEMPTS_MIGRATION = """
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
"""
