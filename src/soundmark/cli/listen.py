"""soundmark listen: recognise what a microphone (or the monitor of what the machine plays) hears.

Thin: the options choose a device (listen/devices.py), an ear — the local store or a server's
WebSocket — and a session (listen/session.py); answers are presented as ``recognize`` presents a
file's (cli/recognize.py), so both commands print the same lines.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soundmark.cli.common import db_option, load_settings, open_store
from soundmark.cli.recognize import _human, _result
from soundmark.listen.errors import ListenError

if TYPE_CHECKING:  # imported lazily at run time: `soundmark --help` needs no PortAudio
    from soundmark.listen.devices import Device
    from soundmark.listen.session import Ear, SongEvent
    from soundmark.settings import Settings

EXIT_MATCH, EXIT_NO_MATCH, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 1, 2, 130


@click.command("listen")
@db_option
@click.option("--device", "device_spec", default=None, metavar="NAME|INDEX",
              help="Input device: its index, its name or a part of it (see --list-devices) [default: the "
                   "system's default input]. On Linux `pulse` with PULSE_SOURCE=<sink>.monitor hears what "
                   "the machine plays on that sink.")  # fmt: skip
@click.option("--list-devices", is_flag=True, help="List the input devices (index, name, input channels, "
              "default rate; * marks the default) and exit.")  # fmt: skip
@click.option("--seconds", type=click.FloatRange(min=1.0), default=None,
              help="Listen at most this long: one-shot [default SOUNDMARK_QUERY_SECONDS, 20]; with "
                   "--continuous stop after it [default: until Ctrl-C].")  # fmt: skip
@click.option("--continuous", is_flag=True,
              help="Keep listening and print each song as it starts, as a stream monitor does "
                   "(windows of SOUNDMARK_STREAM_WINDOW_SECONDS every SOUNDMARK_STREAM_HOP_SECONDS).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON: one-shot the object `recognize --json` prints for a file, with `device` for "
                   "`file`; --continuous one line per song start and end (`event`, `timestamp`).")  # fmt: skip
@click.option("--now-playing", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --continuous: keep FILE holding the song playing (`Artist — Title`, empty when "
                   "nothing plays), rewritten atomically — an OBS text source can show it.")  # fmt: skip
@click.option("--server", default=None, metavar="URL",
              help="Recognise through this soundmark server's WebSocket (/ws/), e.g. http://127.0.0.1:8080, "
                   "instead of the local --db.")  # fmt: skip
@click.option(
    "--token",
    envvar="SOUNDMARK_TOKEN",
    default=None,
    help="With --server: the API token [env SOUNDMARK_TOKEN; default: none, the anonymous quota].",
)
@click.option(
    "--min-score",
    type=float,
    default=None,
    help="Local store: confidence a match must reach, -log10 of a chance match [default 3].",
)
def listen_command(
    db: Path | None, device_spec: str | None, list_devices: bool, seconds: float | None, continuous: bool,
    as_json: bool, now_playing: Path | None, server: str | None, token: str | None, min_score: float | None,
) -> None:  # fmt: skip
    """Recognise what an input device hears: a microphone, or a monitor of what the machine plays.

    One-shot (the default): listen until a match or --seconds, print it as `soundmark recognize`
    prints a file's (with the device name for the file). With --continuous: print each song as
    it starts, until Ctrl-C (or --seconds).

    Against the local store (--db) or a server (--server URL --token T): the same output.

    Exit status: 0 a match was heard (one-shot) or listening ended; 1 one-shot heard no match
    (or the store cannot be opened, as for `recognize`); 2 the device or the server cannot be
    used (the reason on stderr); 130 Ctrl-C.
    """
    from soundmark.listen.devices import find_device
    from soundmark.listen.devices import list_devices as input_devices

    if now_playing is not None and not continuous:
        raise click.UsageError("--now-playing needs --continuous")
    settings = load_settings(db=db, min_score=min_score)
    try:
        if list_devices:
            _print_devices(input_devices())
            return
        device = find_device(device_spec)
        with ExitStack() as stack:
            ear = _ear(stack, settings, server, token, continuous, seconds)
            if continuous:
                _continuous(stack, device, ear, settings, seconds, as_json, now_playing)
                return
            found = _once(stack, device, ear, seconds or settings.query_seconds, as_json)
    except ListenError as exc:
        click.echo(f"soundmark listen: {exc}", err=True)
        sys.exit(EXIT_UNUSABLE)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_MATCH if found else EXIT_NO_MATCH)


def _print_devices(devices: list[Device]) -> None:
    click.echo(f"{'':2}{'index':>5}  {'name':<40} {'in':>3}  rate")
    for d in devices:
        mark = "*" if d.is_default else " "
        click.echo(f"{mark:2}{d.index:>5}  {d.name:<40} {d.input_channels:>3}  {d.default_rate:g} Hz")


def _ear(stack: ExitStack, settings: Settings, server: str | None, token: str | None, continuous: bool,
         seconds: float | None) -> Ear:  # fmt: skip
    """The local store's ear, or a server's; what a question covers: a stream window, or up to
    ``query_seconds`` (as `recognize` reads a file)."""
    window = settings.stream_window_seconds if continuous else min(seconds or settings.query_seconds,
                                                                  settings.query_seconds)  # fmt: skip
    if server:
        from soundmark.listen.remote import RemoteEar

        return stack.enter_context(RemoteEar(server, token, window))
    from soundmark.listen.local import LocalEar
    from soundmark.match.recognizer import MatchSettings

    store = stack.enter_context(open_store(settings.db, catalog_url=settings.catalog_url))
    batch = settings.stream_hop_seconds if continuous else 1.0
    return LocalEar(store, MatchSettings(min_score=settings.min_score, min_votes=settings.min_votes), window, batch)


def _once(stack: ExitStack, device: Device, ear: Ear, seconds: float, as_json: bool) -> bool:
    from soundmark.listen.devices import DeviceInput
    from soundmark.listen.session import listen_once

    source = stack.enter_context(DeviceInput(device, ear.rate))
    t0 = time.perf_counter()
    heard = listen_once(source.blocks(), ear, seconds)
    line: dict[str, object] = {"device": device.name, "status": "success", "result": _result(heard.matches)}
    line["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    click.echo(json.dumps(line, ensure_ascii=False) if as_json else _human(Path(device.name), line))
    return bool(heard.matches)


def _continuous(stack: ExitStack, device: Device, ear: Ear, settings: Settings, seconds: float | None,
                as_json: bool, now_playing: Path | None) -> None:  # fmt: skip
    from soundmark.listen.devices import DeviceInput
    from soundmark.listen.now_playing import NowPlaying, song_line
    from soundmark.listen.session import limited, listen_continuous

    overlay = NowPlaying(now_playing) if now_playing is not None else None
    if overlay is not None:
        overlay.clear()
        stack.callback(overlay.clear)  # nothing plays once listening ends

    def report(event: SongEvent) -> None:
        if not event.matches:
            return
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.start))
        line: dict[str, object] = {"device": device.name, "status": "success", "result": _result(event.matches)}
        if as_json:
            extra: dict[str, object] = {"event": event.kind, "timestamp": stamp}
            if event.kind == "end":
                extra["play_length"] = max(0, round(event.end - event.start))
            click.echo(json.dumps({**extra, **line}, ensure_ascii=False))
        elif event.kind == "start":
            click.echo(f"{stamp}  {_human(Path(device.name), line)}")
        if overlay is not None:
            overlay.show(song_line(event.matches[0]) if event.kind == "start" else "")

    source = stack.enter_context(DeviceInput(device, ear.rate))
    blocks = source.blocks()
    if seconds is not None:
        blocks = limited(blocks, round(seconds * ear.rate))
    listen_continuous(blocks, ear, report, window=settings.stream_window_seconds, hop=settings.stream_hop_seconds,
                      gap=settings.stream_song_gap_seconds)  # fmt: skip
