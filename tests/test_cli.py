from __future__ import annotations

import subprocess
import sys

from uglspot.cli import build_parser
from uglspot.commands import command_modules


def test_help_lists_every_command_and_each_has_its_own_help() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # the registered subcommands
    assert len(commands) == len(command_modules())
    for name, sub in commands.items():
        assert sub.format_help().strip(), name


def test_python_dash_m_runs_and_prints_version() -> None:
    out = subprocess.run([sys.executable, "-m", "uglspot", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("uglspot ")
