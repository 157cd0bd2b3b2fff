"""Quotas are global across API nodes on a shared catalog (PostgreSQL + the Redis Cluster index).

Two real ``soundmark serve`` processes, each with its own ``--db`` directory, share one
PostgreSQL catalog (a schema of this test's own) and one Redis index (a key prefix of its own).
Many requests sent to both at the same instant must be admitted exactly up to the limit: each
admission is the UPSERT that counts it (auth/usage.py), atomic in PostgreSQL, so no node can
admit a request the other one already used. A process-local count would let each node admit
the whole limit on its own.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from contention import wav_bytes
from live_server import Server
from shared_nodes import SharedStore, cli

from soundmark.auth.tokens import TokenStore, utc_day
from soundmark.catalog.sqlite import Catalog
from support import PIECE_RATE, Piece

MONTHLY_LIMIT = 10
TOKEN_REQUESTS = 50
ANONYMOUS_PER_DAY = 5
ANONYMOUS_REQUESTS = 20


@pytest.fixture()
def nodes(shared_store: SharedStore) -> tuple[list[Server], dict[str, str]]:
    """Two API nodes on one shared store holding two of the demo pieces."""
    return shared_store.start("--anonymous-per-day", str(ANONYMOUS_PER_DAY)), shared_store.env


async def _spread(servers: list[Server], n: int, data: dict[str, str], clip: bytes) -> list[dict[str, object]]:
    """``n`` recognize requests at once, alternating between the nodes; their JSON bodies."""
    async with httpx.AsyncClient(timeout=300) as client:
        calls = [
            client.post(servers[i % len(servers)].url + "/", data=data, files={"file": ("c.wav", clip)})
            for i in range(n)
        ]
        responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    return [r.json() for r in responses]


def _outcomes(bodies: list[dict[str, object]]) -> Counter[object]:
    return Counter(
        "success" if b["status"] == "success" else b["error"]["error_code"]  # type: ignore[index]
        for b in bodies
    )


def test_two_nodes_admit_a_monthly_limit_exactly(
    nodes: tuple[list[Server], dict[str, str]], pieces: list[Piece], tmp_path: Path
) -> None:
    servers, env = nodes
    token = cli(env, "token", "create", "--db", str(servers[0].db), "--name", "shared",
                 "--limit-per-month", str(MONTHLY_LIMIT)).splitlines()[-1]  # fmt: skip
    piece = pieces[1]
    clip = wav_bytes(piece.samples[5 * PIECE_RATE : 11 * PIECE_RATE], PIECE_RATE)

    bodies = asyncio.run(_spread(servers, TOKEN_REQUESTS, {"api_token": token}, clip))

    assert _outcomes(bodies) == {"success": MONTHLY_LIMIT, 902: TOKEN_REQUESTS - MONTHLY_LIMIT}, bodies
    found = [b["result"] for b in bodies if b["status"] == "success"]
    assert all(r is not None and r["title"] == piece.title for r in found), found  # type: ignore[index]
    # Node b's own directory sees the count node a and b stored, through the CLI and the catalog.
    out = cli(env, "token", "list", "--db", str(servers[1].db), "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(t["name"], t["used_this_month"]) for t in listed] == [("shared", MONTHLY_LIMIT)]
    catalog = Catalog(servers[1].db)
    try:
        (info,) = TokenStore(catalog).list()
        assert info.used_this_month == MONTHLY_LIMIT and info.remaining_this_month == 0
    finally:
        catalog.close()


def test_two_nodes_admit_an_anonymous_daily_limit_exactly(
    nodes: tuple[list[Server], dict[str, str]], pieces: list[Piece]
) -> None:
    servers, _ = nodes
    clip = wav_bytes(pieces[0].samples[5 * PIECE_RATE : 11 * PIECE_RATE], PIECE_RATE)

    bodies = asyncio.run(_spread(servers, ANONYMOUS_REQUESTS, {}, clip))

    assert _outcomes(bodies) == {"success": ANONYMOUS_PER_DAY, 901: ANONYMOUS_REQUESTS - ANONYMOUS_PER_DAY}, bodies
    catalog = Catalog(servers[0].db)
    try:
        assert TokenStore(catalog).anonymous_used("127.0.0.1", utc_day()) == ANONYMOUS_PER_DAY
    finally:
        catalog.close()
