"""Entry point of the ``soundmark`` command."""

from __future__ import annotations

import click

from soundmark import __version__
from soundmark.cli.add import add_command
from soundmark.cli.audit import audit_command
from soundmark.cli.demo import demo_command
from soundmark.cli.explain import explain_command
from soundmark.cli.info import info_command, list_command, remove_command
from soundmark.cli.listen import listen_command
from soundmark.cli.meta import meta_command
from soundmark.cli.migrate import migrate_command
from soundmark.cli.recognize import recognize_command
from soundmark.cli.report import report_command
from soundmark.cli.scan import scan_command
from soundmark.cli.serve import serve_command
from soundmark.cli.stream import stream_group
from soundmark.cli.token import token_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="soundmark")
def cli() -> None:
    """soundmark: music recognition on your own catalog, with an AudD-compatible API."""


for command in (
    add_command, recognize_command, info_command, list_command, remove_command, demo_command,
    serve_command, token_group, scan_command, stream_group, meta_command, audit_command,
    listen_command, report_command, explain_command, migrate_command,
):  # fmt: skip
    cli.add_command(command)


def main() -> None:
    cli()
