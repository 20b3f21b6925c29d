"""Every command line in the docs parses with the CLI as it is (names and
options), so "Reproduce the paper" cannot drift from the commands."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from uglspot.cli import build_parser, parse

DOCS = Path(__file__).resolve().parents[1] / "docs"


def command_lines(text: str) -> list[str]:
    """`uglspot ...` / `torchrun ... -m uglspot ...` lines of the fenced blocks, continuations joined."""
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.search(r"(?:^|-m )uglspot (.*)$", line)
            usage = "..." in line or " [-" in line or " | " in line  # a synopsis, not a command
            if match and not usage:
                lines.append(match.group(1))
    return lines


ENGINE = command_lines((DOCS / "engine.md").read_text(encoding="utf-8"))


def test_the_reproduction_recipe_is_found() -> None:
    commands = {line.split()[0] for line in ENGINE}
    assert {"detect", "frames", "train", "predict", "eval", "convert", "spot"} <= commands


@pytest.mark.parametrize("line", ENGINE)
def test_engine_doc_command_parses(line: str, capsys) -> None:
    try:
        args = parse(build_parser(), shlex.split(line))
    except SystemExit:
        pytest.fail(f"`uglspot {line}` does not parse: {capsys.readouterr().err.strip()}")
    assert callable(args.func)


@pytest.mark.parametrize("line", [line for line in ENGINE if line.split()[0] in ("train", "predict")
                                  and line.split()[1].startswith("configs/")])
def test_engine_doc_overrides_are_config_keys(line: str) -> None:
    from uglspot.engine.config import load_run_config

    args = parse(build_parser(), shlex.split(line))
    root = Path(__file__).resolve().parents[1]
    load_run_config(root / args.config, args.overrides)  # unknown keys or bad values raise
