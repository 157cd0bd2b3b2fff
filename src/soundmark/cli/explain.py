"""soundmark explain: why a clip matched (or did not), as a picture and as numbers; and the
picture of a scan (``soundmark scan --timeline``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from soundmark.audio.decode import decode
from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.errors import SoundmarkError
from soundmark.match.explain import Explanation, explain_samples
from soundmark.match.recognizer import MatchSettings, Recognizer
from soundmark.match.scan import ScanResult, clock, open_scan_store


def picture_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback: a picture's path must end in .png or .svg."""
    if value is not None:
        from soundmark.render.figure import format_of  # matplotlib loads only for a picture

        try:
            format_of(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from exc
    return value


@click.command("explain")
@db_option
@click.argument("clip", type=click.Path(path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, callback=picture_path,
    help="Write the picture here: PNG or SVG, by the name's extension (match.png, match.svg).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the evidence numbers as one JSON object.")
@click.option("--seconds", type=float, default=None, help="Seconds of the clip analysed [default 20].")
@click.option(
    "--min-score", type=float, default=None,
    help="Confidence a match must reach: -log10 of the chance of a random match [default 3].",
)  # fmt: skip
def explain_command(db: Path | None, clip: Path, out: Path | None, as_json: bool, seconds: float | None,
                    min_score: float | None) -> None:  # fmt: skip
    """Show why CLIP matched a catalog track, or why it did not.

    The picture (--out) lays the clip's spectral peaks over the matched track's stored peaks at the
    found offset and speed, the agreeing ones highlighted, beside the histogram of the hash votes'
    offsets with the winning bin, the candidates weighed and the score with what it means. A miss
    shows its strongest candidates and why each was rejected. Without --out or --json a summary is
    printed.
    """
    from soundmark.render.explain import caption, explain_figure
    from soundmark.render.figure import write_figure

    settings = load_settings(db=db, query_seconds=seconds, min_score=min_score)
    if not clip.is_file():
        raise click.ClickException(f"{clip}: no such file")
    with open_store(settings.db, catalog_url=settings.catalog_url) as store:
        recognizer = Recognizer(store, MatchSettings(min_score=settings.min_score, min_votes=settings.min_votes))
        try:
            samples = decode(clip, store.params.sample_rate, max_seconds=settings.query_seconds)
        except (SoundmarkError, OSError) as exc:
            raise click.ClickException(f"{clip}: not readable as audio ({exc})") from exc
        e = explain_samples(recognizer, samples)
    if out is not None:
        title, _ = caption(e)
        try:
            write_figure(explain_figure(e), out, title=title)
        except OSError as exc:
            raise click.ClickException(f"{out}: {exc.strerror or exc}") from exc
    if as_json:
        click.echo(json.dumps({"file": str(clip), **e.to_dict()}, ensure_ascii=False))
    elif out is None:
        click.echo(summary(e, clip))
    else:
        click.echo(f"{clip}: {caption(e)[0]} -> {out}")


def summary(e: Explanation, clip: Path) -> str:
    """The evidence for a reader: the caption, then each candidate's verdict and reason."""
    from soundmark.render.explain import caption

    title, sub = caption(e)
    lines = [f"{clip}: {title}", f"  {sub}"]
    for c in e.candidates:
        lines.append(f"  - {c.name}: {c.verdict} ({c.votes} votes) — {c.reason}")
    return "\n".join(lines)


def write_timeline(result: ScanResult, db: Path, source: str, out: Path) -> None:
    """``soundmark scan --timeline``: the scan's tracks as bars over the recording, to ``out``."""
    from soundmark.render.figure import write_figure
    from soundmark.render.timeline import timeline_figure

    store = open_scan_store(db, (1.0,))
    try:
        tracks = store.catalog.get_tracks({s.track_id for s in result.segments})
    finally:
        store.close()
    names = {i: " - ".join(x for x in (t.meta.artist, t.meta.title) if x) for i, t in tracks.items()}
    title = f"{Path(source).name}: {len(result.segments)} tracks in {clock(result.duration)}"
    try:
        write_figure(timeline_figure(result, names, title=title), out, title=title)
    except OSError as exc:
        raise click.ClickException(f"{out}: {exc.strerror or exc}") from exc
