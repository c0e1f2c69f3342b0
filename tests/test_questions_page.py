"""docs/QUESTIONS.md names only facts that exist and commands the CLI has."""

from __future__ import annotations

import re
from pathlib import Path

from nnlab.facts import all_facts

PAGE = (Path(__file__).parents[1] / "docs" / "QUESTIONS.md").read_text()


def test_every_named_fact_exists():
    named = set(re.findall(r"fact `([a-z0-9-]+)`", PAGE))
    named |= set(re.findall(r"--name ([a-z0-9-]+)", PAGE))
    assert len(named) >= 12
    assert named <= set(all_facts()), named - set(all_facts())


def test_every_nnlab_command_exists():
    from typer.testing import CliRunner

    from nnlab.cli import build_app

    commands = set(re.findall(r"`nnlab ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", PAGE))
    assert len(commands) >= 15
    for command in sorted(commands):
        argv = [word for word in command if word] + ["--help"]
        result = CliRunner().invoke(build_app(argv), argv)
        assert result.exit_code == 0 and "Usage" in result.output, (command, result.output)
