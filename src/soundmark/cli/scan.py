"""soundmark scan: find every catalog track in a long recording (DJ mix, radio log, day-long file)."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from soundmark.audd.models import wire
from soundmark.audd.presenter import tracklist_csv, tracklist_entry
from soundmark.audio.decode import probe_duration
from soundmark.cli.common import db_option, load_settings
from soundmark.cli.explain import picture_path, write_timeline
from soundmark.errors import SoundmarkError, StoreError
from soundmark.match.scan import ScanResult, ScanSettings, clock, open_scan_store, scan


@click.command("scan")
@db_option
@click.argument("source", metavar="FILE|URL")
@click.option("--json", "fmt", flag_value="json", help="Print one JSON object: the tracklist with every detail.")
@click.option("--tracklist", "fmt", flag_value="tracklist", help="Print a plain tracklist: `HH:MM:SS Artist - Title`.")
@click.option("--csv", "fmt", flag_value="csv", help="Print the tracklist as CSV with a header row.")
@click.option("--every", type=float, default=None, help="Seconds between two 10 s analysis windows [default 5].")
@click.option(
    "--min-score", type=float, default=None,
    help="Confidence a track needs in at least one window: -log10 of the chance of a random match [default 6].",
)  # fmt: skip
@click.option("--workers", type=int, default=None, help="Worker processes [default SOUNDMARK_SCAN_WORKERS, 2].")
@click.option("--no-progress", is_flag=True, help="Do not draw the progress bar on stderr.")
@click.option(
    "--timeline", type=click.Path(dir_okay=False, path_type=Path), default=None, callback=picture_path,
    help="Also draw the tracks as bars over the recording's time (cross-fades visible): OUT.png or OUT.svg.",
)  # fmt: skip
def scan_command(
    db: Path | None, source: str, fmt: str | None, every: float | None, min_score: float | None,
    workers: int | None, no_progress: bool, timeline: Path | None,
) -> None:  # fmt: skip
    """Find every catalog track in the long recording FILE (or at URL) with where it starts and
    ends, in the recording and in the track.

    The default output is a readable table; --json, --tracklist and --csv are for programs.
    """
    settings = load_settings(db=db, scan_workers=workers, scan_hop_seconds=every)
    s = ScanSettings(hop_seconds=settings.scan_hop_seconds)
    if min_score is not None:
        s = ScanSettings(hop_seconds=settings.scan_hop_seconds, min_score=min_score)
    try:
        open_scan_store(settings.db, s.speeds).close()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    n_workers = settings.scan_workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="soundmark-scan-") as tmp:
        path = _local_path(source, Path(tmp), settings.max_enterprise_download_bytes, settings.download_timeout)
        total = probe_duration(path)
        err = Console(stderr=True)
        show = not no_progress and err.is_terminal
        try:
            if show:
                with Progress(
                    TextColumn("[bold]scan[/]"), BarColumn(), TextColumn("{task.fields[pos]}"),
                    TimeRemainingColumn(), console=err, transient=True,
                ) as bar:  # fmt: skip
                    task = bar.add_task("scan", total=total or None, pos="")

                    def progress(done: float, _total: float | None) -> None:
                        bar.update(task, completed=done, pos=f"{clock(done)} / {clock(total) if total else '?'}")

                    result = scan(path, settings.db, s, workers=n_workers if n_workers > 1 else None,
                                  total_seconds=total, progress=progress)  # fmt: skip
            else:
                result = scan(path, settings.db, s, workers=n_workers if n_workers > 1 else None, total_seconds=total)
        except (SoundmarkError, OSError) as exc:
            raise click.ClickException(f"{source}: {exc}") from exc
    click.echo(render(result, settings.db, fmt, source), nl=False)
    if timeline is not None:
        write_timeline(result, settings.db, source, timeline)


def _local_path(source: str, tmp: Path, max_bytes: int, timeout: float) -> Path:
    if source.startswith(("http://", "https://")):
        from soundmark.audio.fetch import fetch_url

        try:
            data = asyncio.run(fetch_url(source, max_bytes=max_bytes, timeout=timeout, allow_private=True))
        except SoundmarkError as exc:
            raise click.ClickException(f"{source}: {exc}") from exc
        path = tmp / "download"
        path.write_bytes(data)
        return path
    path = Path(source)
    if not path.is_file():
        raise click.ClickException(f"{source}: no such file")
    return path


def render(result: ScanResult, db: Path, fmt: str | None, source: str) -> str:
    store = open_scan_store(db, (1.0,))
    try:
        tracks = store.catalog.get_tracks({s.track_id for s in result.segments})
    finally:
        store.close()
    entries = [tracklist_entry(s, tracks.get(s.track_id)) for s in result.segments]
    records: list[dict[str, object]] = [wire(e) for e in entries]
    if fmt == "json":
        body = {
            "file": source,
            "duration": round(result.duration, 2),
            "analysis_seconds": round(result.wall_seconds, 2),
            "realtime_factor": round(result.realtime_factor, 1),
            "tracks": records,
        }
        return json.dumps(body, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return tracklist_csv(entries)
    if fmt == "tracklist":
        return "".join(f"{r['start_time']} {_name(r)}\n" for r in records)
    lines = [f"{source}: {len(records)} tracks in {clock(result.duration)} "
             f"(analysed at {result.realtime_factor:.0f}x realtime)"]  # fmt: skip
    for r in records:
        speed = f", speed {float(r['speed']):.3f}" if abs(float(r["speed"]) - 1) >= 0.005 else ""  # type: ignore[arg-type]
        lines.append(
            f"{r['start_time']}-{r['end_time']}  {_name(r)}  "
            f"(track {clock(float(r['ref_start']))}-{clock(float(r['ref_end']))}{speed}, score {r['score']})"  # type: ignore[arg-type]
        )
    return "\n".join(lines) + "\n"


def _name(r: dict[str, object]) -> str:
    name = " - ".join(str(r[k]) for k in ("artist", "title") if r.get(k))
    if not name and r.get("audio_id") is not None:
        name = f"audio_id {r['audio_id']}"
    return name or f"track {r['track_id']}"
