"""Fixtures of the index tests: the Redis Cluster of the scale-out backend (tests/servers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from servers import delete_prefix, server_urls


@pytest.fixture(scope="session")
def redis_cluster() -> str:
    """``redis://host:port,...`` of a running Redis Cluster; fails (never skips) without one."""
    try:
        return server_urls()["SOUNDMARK_TEST_REDIS_URL"]
    except RuntimeError as exc:
        pytest.fail(f"no Redis Cluster for the index tests: {exc}")


@pytest.fixture()
def redis_prefix(redis_cluster: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(redis_cluster, prefix)


@pytest.fixture()
def redis_url(redis_cluster: str, redis_prefix: str) -> str:
    """The cluster's URL with this test's key prefix."""
    return f"{redis_cluster}/{redis_prefix}"
