"""``GET /reports.json|csv|pdf`` on a live server (uvicorn in a subprocess) over a store whose
stations played PLAYS: an admin token gets the report, others get AudD's errors."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from airplay import (
    EXPECTED_DAYS,
    EXPECTED_PLAYS,
    EXPECTED_SECONDS,
    STATION_TOKEN,
    Airplay,
    describe_tracks,
    record_plays,
)
from live_server import Server, start_server, stop_server

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-04"}


@pytest.fixture(scope="module")
def reports_server(tmp_path_factory: pytest.TempPathFactory, built_store: Path) -> Iterator[tuple[Server, Airplay]]:
    db = tmp_path_factory.mktemp("reports") / "db"
    shutil.copytree(built_store, db)
    tracks = describe_tracks(db)
    token_id = record_plays(db, [t.id for t in tracks])
    server = start_server(db, db.parent / "server.log", "--role", "api")
    try:
        yield server, Airplay(db, tracks, token_id)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def admin(reports_server: tuple[Server, Airplay]) -> str:
    return reports_server[0].token("operator", "--scopes", "admin")


def _get(server: Server, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params={k: str(v) for k, v in params.items()}, timeout=30)


def test_json_for_an_admin(reports_server: tuple[Server, Airplay], admin: str) -> None:
    server, _ = reports_server
    r = _get(server, "/reports.json", **NOVEMBER, api_token=admin, offset=5, limit=10, top=2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "success"
    result = body["result"]
    assert (result["plays"], result["play_seconds"]) == (EXPECTED_PLAYS, EXPECTED_SECONDS)
    assert {d["day"]: (d["plays"], d["play_seconds"]) for d in result["days"]} == EXPECTED_DAYS
    assert len(result["top_tracks"]) == 2
    assert (result["log"]["offset"], result["log"]["count"], result["log"]["total"]) == (5, 2, EXPECTED_PLAYS)
    one = _get(server, "/reports.json", **NOVEMBER, api_token=admin, radio_id=2).json()["result"]
    assert (one["radio_id"], one["plays"]) == (2, 3)


def test_csv_and_pdf_for_an_admin(reports_server: tuple[Server, Airplay], admin: str) -> None:
    server, _ = reports_server
    r = _get(server, "/reports.csv", **NOVEMBER, api_token=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="airplay-2026-11-01-2026-11-04.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == EXPECTED_PLAYS and sum(int(x["play_length"] or 0) for x in rows) == EXPECTED_SECONDS
    tracks = list(
        csv.DictReader(io.StringIO(_get(server, "/reports.csv", **NOVEMBER, api_token=admin, kind="tracks").text))
    )
    assert sum(int(x["plays"]) for x in tracks) == EXPECTED_PLAYS
    pdf = _get(server, "/reports.pdf", **NOVEMBER, api_token=admin)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and len(pdf.content) > 5000


@pytest.mark.parametrize("path", ["/reports.json", "/reports.csv", "/reports.pdf"])
def test_tokens_without_admin_are_refused(reports_server: tuple[Server, Airplay], path: str) -> None:
    server, _ = reports_server
    none = _get(server, path, **NOVEMBER)
    assert none.status_code == 401 and none.json()["error"]["error_code"] == 900
    wrong = _get(server, path, **NOVEMBER, api_token="not-a-token-at-all")
    assert wrong.status_code == 401 and wrong.json()["error"]["error_code"] == 900
    station = _get(server, path, **NOVEMBER, api_token=STATION_TOKEN)  # scopes recognize, catalog:write, streams
    assert station.status_code == 403 and station.json()["error"]["error_code"] == 904
    assert "USRC17607839" not in station.text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"from": "2026-11-01"}, "`from` and `to` are required"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "`from` must be a date"),
        ({"from": "2026-11-04", "to": "2026-11-01"}, "must be after"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "at most 366"),
        ({**NOVEMBER, "radio_id": "x"}, "radio_id"),
        ({**NOVEMBER, "limit": "5000"}, "limit"),
        ({**NOVEMBER, "tz": "Atlantis/Capital"}, "unknown time zone"),
    ],
)
def test_bad_parameters_are_audd_errors(
    reports_server: tuple[Server, Airplay], admin: str, params: dict[str, str], needle: str
) -> None:
    server, _ = reports_server
    r = _get(server, "/reports.json", **params, api_token=admin)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "error" and body["error"]["error_code"] == 50
    assert needle in body["error"]["error_message"]
    assert "Traceback" not in server.log_text()
