"""The process roles: what each runs, and that ``serve --help`` explains every one."""

from __future__ import annotations

import typing

from click.testing import CliRunner

from soundmark.cli.main import cli
from soundmark.services.runtime import ROLES, Role
from soundmark.settings import Settings


def test_each_role_runs_its_part_and_all_runs_everything() -> None:
    runs = {name: (r.serves_api, r.monitors, r.runs_jobs) for name in ROLES for r in [Role(name)]}
    assert runs == {
        "api": (True, False, False),
        "monitor": (False, True, False),
        "jobs": (False, False, True),
        "all": (True, True, True),
    }
    assert set(typing.get_args(Settings.model_fields["role"].annotation)) == set(ROLES)
    assert Role.of(Settings()).name == "all"  # today's behaviour by default


def test_serve_help_explains_every_role() -> None:
    out = CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200).output
    for name, meaning in ROLES.items():
        assert f"{name:<8} {meaning}" in out
    assert "SOUNDMARK_ROLE" in out
