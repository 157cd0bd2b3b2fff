"""soundmark recognize: identify audio files; the benchmark's contract (one JSON line per file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from soundmark.audd.models import wire
from soundmark.audd.presenter import match_record
from soundmark.audio.decode import decode
from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.errors import SoundmarkError
from soundmark.match.recognizer import Match, MatchSettings, Recognizer


@click.command("recognize")
@db_option
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (the AudD response + file).")
@click.option("--seconds", type=float, default=None, help="Seconds of each file analysed [default 20].")
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Confidence a match must reach: -log10 of the chance of a random match [default 3].",
)
def recognize_command(
    db: Path | None, files: tuple[Path, ...], as_json: bool, seconds: float | None, min_score: float | None
) -> None:
    """Identify each FILE against the catalog: track, position in it (timecode) and score.

    With --json every file gives one line {"file", "status", "result", "elapsed_ms"} where
    result is null when the audio is not in the catalog.

    Exit status: 0 when every file was analysed (matched or not), 2 when a file does not exist,
    1 when a file could not be read as audio; each failing file is named on stderr.
    """
    settings = load_settings(db=db, query_seconds=seconds, min_score=min_score)
    store = open_store(settings.db, catalog_url=settings.catalog_url)
    recognizer = Recognizer(store, MatchSettings(min_score=settings.min_score, min_votes=settings.min_votes))
    sr = store.params.sample_rate
    missing: list[Path] = []
    unreadable: list[Path] = []
    with store:
        for f in files:
            t0 = time.perf_counter()
            line: dict[str, object]
            try:
                if not f.is_file():
                    missing.append(f)
                    raise FileNotFoundError(f"no such file: {f}")
                samples = decode(f, sr, max_seconds=settings.query_seconds)
                matches = recognizer.recognize(samples)
                line = {"file": str(f), "status": "success", "result": _result(matches)}
            except (SoundmarkError, OSError) as exc:
                code = exc.code if isinstance(exc, SoundmarkError) else 500
                if f not in missing:
                    unreadable.append(f)
                line = {
                    "file": str(f),
                    "status": "error",
                    "error": {"error_code": code, "error_message": str(exc)},
                }
            line["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            if as_json:
                click.echo(json.dumps(line, ensure_ascii=False))
            else:
                click.echo(_human(f, line))
    for f in missing:
        click.echo(f"soundmark recognize: {f}: no such file", err=True)
    for f in unreadable:
        click.echo(f"soundmark recognize: {f}: not readable as audio", err=True)
    if missing or unreadable:
        sys.exit(2 if missing else 1)


def _result(matches: list[Match]) -> dict[str, object] | None:
    if not matches:
        return None
    record = match_record(matches[0])
    if len(matches) > 1:
        record.alternatives = [match_record(m) for m in matches[1:]]
    result: dict[str, object] = wire(record)
    return result


def _human(path: Path, line: dict[str, object]) -> str:
    if line["status"] != "success":
        return f"{path}: error: {line['error']['error_message']}"  # type: ignore[index]
    r = line["result"]
    if r is None:
        return f"{path}: no match"
    assert isinstance(r, dict)
    who = " - ".join(str(x) for x in (r.get("artist"), r.get("title")) if x)
    return f"{path}: {who} at {r['timecode']} (score {r['score']}, track {r['track_id']})"
