"""Migration 12: what several nodes over one catalog need to share work without doing it twice.

- ``nodes``: every running ``serve`` process (its id, role, where it runs, when it last said it
  was alive), so an operator sees the cluster and a node tells a dead peer from a live one;
- ``streams.owner`` / ``streams.lease_until``: the monitor node that holds a stream, until when
  (unix time); a monitor renews its leases, and takes a stream whose lease ran out;
- ``jobs.owner`` / ``jobs.lease_until``: the same for enterprise jobs and job nodes;
- ``stream_events.owner``: the node delivering a callback now (with ``next_attempt_at`` as the
  end of its claim), so each event is POSTed by one node;
- ``job_audio``: an enterprise job's uploaded audio in chunks, so a job node on another machine
  can run (or resume) a job an API node accepted.
The PostgreSQL schema gets the same columns (``catalog/schema_postgres.py``, its migration 2).
"""

from __future__ import annotations

MIGRATION = """
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,              -- random per process start
    role TEXT NOT NULL,               -- api | monitor | jobs | all
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL             -- the last heartbeat (unix time)
);
ALTER TABLE streams ADD COLUMN owner TEXT;
ALTER TABLE streams ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;
ALTER TABLE stream_events ADD COLUMN owner TEXT;
CREATE TABLE job_audio (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

PG_MIGRATION = """
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL
);
ALTER TABLE streams ADD COLUMN owner TEXT;
ALTER TABLE streams ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE stream_events ADD COLUMN owner TEXT;
CREATE TABLE job_audio (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""
