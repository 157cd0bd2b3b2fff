"""API tokens: hashed storage, authentication, revocation, quotas (also across processes), CLI."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from soundmark.auth.tokens import DEFAULT_SCOPES, TokenStore, mask_token, month_period
from soundmark.catalog.sqlite import Catalog
from soundmark.cli.token import token_group

JAN = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture()
def catalog(tmp_path: Path) -> Catalog:
    c = Catalog(tmp_path)
    yield c
    c.close()


@pytest.fixture()
def tokens(catalog: Catalog) -> TokenStore:
    return TokenStore(catalog)


def _store_bytes(root: Path, *, expect_wal: bool = False) -> bytes:
    """Every byte of every file under the store: catalog, its WAL and shared memory, index."""
    files = sorted(f for f in root.rglob("*") if f.is_file())
    if expect_wal:  # while a connection is open, recent commits live in the WAL only
        assert (root / "catalog.sqlite-wal").stat().st_size > 0, files
    return b"".join(f.read_bytes() for f in files)


# --- creation and hashing ---------------------------------------------------------------------
def test_create_stores_only_the_hash(tmp_path: Path, catalog: Catalog, tokens: TokenStore) -> None:
    token, info = tokens.create("alice", limit_per_month=10)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes, url-safe base64 without padding
    assert not token.startswith("-")
    assert info.prefix == token[:6]
    assert info.name == "alice" and info.limit_per_month == 10 and info.used_this_month == 0
    assert info.scopes == frozenset(DEFAULT_SCOPES) and info.revoked_at is None
    row = catalog.conn.execute("SELECT * FROM tokens").fetchone()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in tuple(row)

    assert tokens.authenticate(token) is not None
    assert tokens.consume(info)
    tokens.list()
    data = _store_bytes(tmp_path, expect_wal=True)
    assert row["token_hash"].encode() in data  # the files read really hold the token table
    assert token.encode() not in data
    assert token[6:].encode() not in data  # nor any of its secret part


def test_tokens_are_unique(tokens: TokenStore) -> None:
    made = {tokens.create(f"t{i}")[0] for i in range(20)}
    assert len(made) == 20


def test_create_validates(tokens: TokenStore) -> None:
    with pytest.raises(ValueError):
        tokens.create("  ")
    with pytest.raises(ValueError):
        tokens.create("x", limit_per_month=-1)
    with pytest.raises(ValueError):
        tokens.create("x", scopes=[])
    with pytest.raises(ValueError):
        tokens.create("x", scopes=["recognize", "bad scope"])
    with pytest.raises(TypeError):
        tokens.create("x", scopes="recognize")
    # AudD's demo token is too short to import; the error points to the server option instead.
    with pytest.raises(ValueError, match="--demo-token"):
        tokens.create("demo", value="test")
    assert tokens.list() == []


def test_scopes(tokens: TokenStore) -> None:
    token, info = tokens.create("reader", scopes=["recognize"])
    assert info.has_scope("recognize")
    assert not info.has_scope("catalog:write") and not info.has_scope("streams")
    again = tokens.authenticate(token)
    assert again is not None and again.scopes == frozenset({"recognize"})
    _, full = tokens.create("admin")
    assert all(full.has_scope(s) for s in ("recognize", "catalog:write", "streams"))


# --- authenticate / revoke --------------------------------------------------------------------
def test_authenticate(tokens: TokenStore) -> None:
    token, info = tokens.create("alice")
    other, _ = tokens.create("bob")
    got = tokens.authenticate(token)
    assert got is not None and got.id == info.id and got.name == "alice"
    assert tokens.authenticate(other).name == "bob"  # type: ignore[union-attr]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    weird = ("\x00", token + "\x00", "\ud800" + token[1:], "é" * 43)
    for bad in (flipped, token[:-1], token + "x", "", " " + token, token.upper(), "x" * 10_000, *weird):
        assert tokens.authenticate(bad) is None, bad
    assert tokens.authenticate(None) is None  # type: ignore[arg-type]


def test_revoke_by_prefix_and_id(tokens: TokenStore) -> None:
    t1, i1 = tokens.create("one")
    t2, i2 = tokens.create("two")
    assert tokens.revoke(i1.prefix)
    assert tokens.authenticate(t1) is None
    assert tokens.authenticate(t2) is not None
    assert not tokens.revoke(i1.prefix)  # already revoked
    assert tokens.revoke(str(i2.id))
    assert tokens.authenticate(t2) is None
    assert not tokens.revoke(str(i2.id))
    assert not tokens.revoke("nosuch") and not tokens.revoke("") and not tokens.revoke("999")
    listed = {i.id: i for i in tokens.list()}
    assert listed[i1.id].revoked and listed[i2.id].revoked_at is not None


def test_revoke_ambiguous_prefix(catalog: Catalog, tokens: TokenStore) -> None:
    _, a = tokens.create("a")
    tokens.create("b")
    catalog.conn.execute("UPDATE tokens SET prefix='same00'")
    with pytest.raises(ValueError, match="by id"):
        tokens.revoke("same00")
    assert tokens.revoke(str(a.id))
    assert tokens.revoke("same00")  # now only b is active under that prefix
    assert all(i.revoked for i in tokens.list())


def test_consume_refused_after_revoke(tokens: TokenStore) -> None:
    _, info = tokens.create("x")
    assert tokens.consume(info)
    tokens.revoke(info.prefix)
    assert not tokens.consume(info)  # the stale record does not keep it alive
    assert tokens.get(info.id).used_this_month == 1  # type: ignore[union-attr]


# --- monthly quota ----------------------------------------------------------------------------
def test_monthly_limit_boundary(tokens: TokenStore) -> None:
    _, info = tokens.create("x", limit_per_month=5)
    assert tokens.consume(info, 3, now=JAN)
    assert not tokens.consume(info, 3, now=JAN)  # 6 > 5: refused, nothing counted
    assert tokens.get(info.id, now=JAN).used_this_month == 3  # type: ignore[union-attr]
    assert tokens.consume(info, 2, now=JAN)  # exactly 5
    assert not tokens.consume(info, now=JAN)
    assert not tokens.consume(info, 6, now=JAN + timedelta(days=1))  # more than a month's limit
    got = tokens.get(info.id, now=JAN)
    assert got is not None and got.used_this_month == 5 and got.remaining_this_month == 0
    with pytest.raises(ValueError):
        tokens.consume(info, 0)


def test_month_rollover(tokens: TokenStore) -> None:
    token, info = tokens.create("x", limit_per_month=2)
    dec = datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert tokens.consume(info, now=dec) and tokens.consume(info, now=dec)
    assert not tokens.consume(info, now=dec)
    jan = dec + timedelta(seconds=1)
    assert month_period(dec) == "2023-12" and month_period(jan) == "2024-01"
    assert tokens.authenticate(token, now=jan).used_this_month == 0  # type: ignore[union-attr]
    assert tokens.consume(info, now=jan)
    # 19:30 on Jan 31st in UTC-5 is already February in UTC: the period follows UTC.
    est = datetime(2024, 1, 31, 19, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert month_period(est) == "2024-02"
    assert tokens.consume(info, 2, now=est)
    assert [(i.used_this_month) for i in tokens.list(now=dec)] == [2]
    assert [(i.used_this_month) for i in tokens.list(now=jan)] == [1]
    assert [(i.used_this_month) for i in tokens.list(now=est)] == [2]


def test_zero_and_unlimited(tokens: TokenStore) -> None:
    _, zero = tokens.create("zero", limit_per_month=0)
    assert not tokens.consume(zero)
    _, free = tokens.create("free")
    assert all(tokens.consume(free, now=JAN) for _ in range(50))
    assert tokens.consume(free, 1000, now=JAN)
    assert tokens.get(free.id, now=JAN).used_this_month == 1050  # type: ignore[union-attr]
    assert tokens.get(free.id, now=JAN).remaining_this_month is None  # type: ignore[union-attr]


def test_limit_change_applies_to_existing_records(catalog: Catalog, tokens: TokenStore) -> None:
    _, info = tokens.create("x", limit_per_month=1)
    assert tokens.consume(info, now=JAN)
    catalog.conn.execute("UPDATE tokens SET limit_per_month=3 WHERE id=?", (info.id,))
    assert tokens.consume(info, 2, now=JAN)  # the catalog's limit counts, not the stale record's
    assert not tokens.consume(info, now=JAN)


def _consume_worker(root: str, token_id: int, n: int, barrier, results) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog(Path(root))
    store = TokenStore(catalog)
    info = store.get(token_id)
    assert info is not None
    barrier.wait()
    results.put(sum(store.consume(info, now=JAN) for _ in range(n)))
    catalog.close()


def test_concurrent_consume_never_exceeds_limit(tmp_path: Path, tokens: TokenStore) -> None:
    _, info = tokens.create("shared", limit_per_month=120)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    results = ctx.Queue()
    procs = [ctx.Process(target=_consume_worker, args=(str(tmp_path), info.id, 50, barrier, results)) for _ in range(4)]
    for p in procs:
        p.start()
    counts = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    results.close()
    results.join_thread()
    assert sum(counts) == 120
    assert tokens.get(info.id, now=JAN).used_this_month == 120  # type: ignore[union-attr]


# --- anonymous quota --------------------------------------------------------------------------
def test_anonymous_quota_per_day(catalog: Catalog, tokens: TokenStore) -> None:
    day = datetime(2024, 3, 10, 23, 0, tzinfo=UTC)
    assert [tokens.consume_anonymous("10.0.0.1", 3, now=day) for _ in range(5)] == [True] * 3 + [False] * 2
    assert tokens.consume_anonymous("10.0.0.2", 3, now=day)  # per client
    assert tokens.consume_anonymous("::1", 3, now=day)
    next_day = day + timedelta(hours=1)  # past midnight UTC
    assert tokens.consume_anonymous("10.0.0.1", 3, now=next_day)
    # 20:30 in UTC-5 on the 10th is 01:30 UTC on the 11th: same UTC day as next_day.
    local = datetime(2024, 3, 10, 20, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert tokens.consume_anonymous("10.0.0.1", 3, now=local)
    assert tokens.consume_anonymous("10.0.0.1", 3, now=local)
    assert not tokens.consume_anonymous("10.0.0.1", 3, now=next_day)
    counts = dict(((r[0], r[1]), r[2]) for r in catalog.conn.execute("SELECT client, day, count FROM anonymous_usage"))
    assert counts[("10.0.0.1", "2024-03-10")] == 3 and counts[("10.0.0.1", "2024-03-11")] == 3
    assert not tokens.consume_anonymous("10.0.0.9", 0, now=day)  # quota 0: never
    assert tokens.prune_anonymous(now=next_day + timedelta(days=3), keep_days=2) == 4
    assert catalog.conn.execute("SELECT COUNT(*) FROM anonymous_usage").fetchone()[0] == 0


# --- masking ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "masked"),
    [("", ""), ("a", "***"), ("ab", "***"), ("abc", "a***c"), ("test", "t***t"), ("0123456789", "0***9")],
)
def test_mask_token(token: str, masked: str) -> None:
    assert mask_token(token) == masked


def test_mask_real_token(tokens: TokenStore) -> None:
    token, _ = tokens.create("x")
    assert mask_token(token) == f"{token[0]}***{token[-1]}"
    assert token[1:-1] not in mask_token(token)


# --- CLI --------------------------------------------------------------------------------------
def _runner() -> CliRunner:
    return CliRunner(mix_stderr=False)


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    db = tmp_path / "db"
    res = _runner().invoke(token_group, ["create", "--db", str(db), "--name", "alice", "--limit-per-month", "7"])
    assert res.exit_code == 0, res.output + res.stderr
    token = res.stdout.splitlines()[-1]
    assert res.stdout == token + "\n"
    assert "alice" in res.stderr and token not in res.stderr
    res2 = _runner().invoke(token_group, ["create", "--db", str(db), "--name", "bot", "--scopes", "recognize, streams"])
    assert res2.exit_code == 0, res2.stderr
    token2 = res2.stdout.splitlines()[-1]

    catalog = Catalog(db)
    try:
        store = TokenStore(catalog)
        info = store.authenticate(token)
        assert info is not None and info.limit_per_month == 7 and info.scopes == frozenset(DEFAULT_SCOPES)
        bot = store.authenticate(token2)
        assert bot is not None and bot.scopes == frozenset({"recognize", "streams"})
        assert store.consume(info, 2)
        hashes = [r[0] for r in catalog.conn.execute("SELECT token_hash FROM tokens")]
    finally:
        catalog.close()

    res = _runner().invoke(token_group, ["list", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["name"] for r in rows] == ["alice", "bot"]
    assert rows[0]["prefix"] == token[:6] and rows[0]["used_this_month"] == 2
    assert rows[0]["limit_per_month"] == 7 and rows[1]["limit_per_month"] is None
    assert rows[0]["revoked_at"] is None and rows[1]["scopes"] == ["recognize", "streams"]
    res_h = _runner().invoke(token_group, ["list", "--db", str(db)])
    assert res_h.exit_code == 0 and "alice" in res_h.stdout and "2/7" in res_h.stdout
    for out in (res.stdout, res_h.stdout):
        for secret in (token, token2, *hashes):
            assert secret not in out

    res = _runner().invoke(token_group, ["revoke", "--db", str(db), token[:6]])
    assert res.exit_code == 0, res.stderr
    res = _runner().invoke(token_group, ["revoke", "--db", str(db), token[:6]])
    assert res.exit_code == 1 and "no active token" in res.stderr
    listed = _runner().invoke(token_group, ["list", "--db", str(db), "--json"]).stdout
    rows = [json.loads(x) for x in listed.splitlines()]
    assert rows[0]["revoked_at"] is not None and rows[1]["revoked_at"] is None
    res = _runner().invoke(token_group, ["revoke", "--db", str(db), str(rows[1]["id"])])
    assert res.exit_code == 0


def test_cli_errors(tmp_path: Path) -> None:
    db = tmp_path / "db"
    res = _runner().invoke(token_group, ["list", "--db", str(db)])
    assert res.exit_code == 1 and "no soundmark store" in res.stderr
    res = _runner().invoke(token_group, ["create", "--db", str(db), "--name", "x", "--scopes", "bad scope"])
    assert res.exit_code == 2 and res.stdout == ""
    res = _runner().invoke(token_group, ["create", "--db", str(db), "--name", "x", "--limit-per-month", "-1"])
    assert res.exit_code == 2 and res.stdout == ""
    res = _runner().invoke(token_group, ["create", "--db", str(db)])
    assert res.exit_code == 2  # --name is required
    for sub in ("create", "list", "revoke"):
        helptext = _runner().invoke(token_group, [sub, "--help"]).stdout
        assert "--db" in helptext


_CMD = [sys.executable, "-c", "from soundmark.cli.token import token_group; token_group()"]


def test_cli_subprocess_last_line(tmp_path: Path) -> None:
    db = tmp_path / "db"
    env = {k: v for k, v in os.environ.items() if k != "SOUNDMARK_DB"}
    proc = subprocess.run(
        [*_CMD, "create", "--db", str(db), "--name", "script", "--limit-per-month", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.splitlines()[-1]
    assert "created token" in proc.stderr
    # The documented shell idiom captures exactly the token.
    script = f'TOKEN=$({shlex.join(_CMD)} create --db {shlex.quote(str(db))} --name sh | tail -1); echo "$TOKEN"'
    shell = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert shell.returncode == 0, shell.stderr
    token_sh = shell.stdout.strip()
    catalog = Catalog(db)
    try:
        store = TokenStore(catalog)
        a, b = store.authenticate(token), store.authenticate(token_sh)
        assert a is not None and a.name == "script" and a.limit_per_month == 3
        assert b is not None and b.name == "sh"
    finally:
        catalog.close()
    assert token.encode() not in _store_bytes(db)
