"""The real servers of the scale-out backends for tests: a Redis Cluster (and PostgreSQL), started
by ``scripts/servers.sh`` unless the environment names running ones (``.ci/run`` does)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from redis import RedisCluster
from redis.cluster import ClusterNode

from soundmark.index.redis_url import parse_redis_url

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "servers.sh"


def server_urls() -> dict[str, str]:
    """``SOUNDMARK_TEST_*_URL`` values: from the environment, else from ``servers.sh start``
    (which starts the servers, or reuses them). RuntimeError when neither works."""
    names = ("SOUNDMARK_TEST_REDIS_URL", "SOUNDMARK_TEST_POSTGRES_URL")
    if all(os.environ.get(n) for n in names):
        return {n: os.environ[n] for n in names}
    try:
        proc = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{SCRIPT} start failed: {exc}") from exc
    if proc.returncode != 0:
        raise RuntimeError(
            f"{SCRIPT} start failed (set SOUNDMARK_TEST_REDIS_URL to use running servers): {proc.stderr}"
        )
    found = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.removeprefix("export ").partition("=")
        if sep and name in names:
            found[name] = value
    return {n: os.environ.get(n) or found[n] for n in names}


def delete_prefix(cluster_url: str, prefix: str) -> int:
    """Delete every key under ``prefix:`` (or ``{prefix:``) on every master; returns how many went."""
    location = parse_redis_url(cluster_url)
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in location.nodes])
    deleted = 0
    try:
        for node in client.get_primaries():
            r = client.get_redis_connection(node)
            pipe = r.pipeline(transaction=False)
            for pattern in (f"{prefix}:*", f"{{{prefix}:*"):  # hash keys start with a hash tag
                for key in r.scan_iter(match=pattern, count=1000):
                    pipe.delete(key)
                    deleted += 1
            pipe.execute()
    finally:
        client.close()
    return deleted


def drop_schema(postgres_url: str, schema: str) -> None:
    """Drop a test's PostgreSQL schema and everything in it."""
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
