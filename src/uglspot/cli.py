"""The ``uglspot`` command line: a thin dispatcher over subcommand modules.

Every module in the ``uglspot.commands`` package that defines
``register(subparsers)`` is a command: it adds its parser and sets ``func`` to
a function taking the parsed arguments and returning an exit code. Heavy
imports (torch, av) happen inside those functions so ``uglspot --help`` stays
instant. A module's ``ORDER`` (default 100) places it in ``--help``.
"""

from __future__ import annotations

import argparse
import sys

from uglspot import __version__
from uglspot.commands import command_modules
from uglspot.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uglspot",
        description="Spot the exact frame and class of actions in long sports videos (UGL method).",
    )
    parser.add_argument("--version", action="version", version=f"uglspot {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; a command without sub-commands of its own takes its
    options before, between or after its positional arguments
    (``uglspot detect a.mp4 --fps 2 b.mp4 --out stores``)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    command = commands.get(argv[0]) if argv else None
    if command is None or any(isinstance(a, argparse._SubParsersAction) for a in command._actions):
        return parser.parse_args(argv)
    try:
        args = command.parse_intermixed_args(argv[1:])
    except TypeError:  # a parser shape intermixed parsing does not support
        return parser.parse_args(argv)
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, list(sys.argv[1:] if argv is None else argv))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"uglspot {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"uglspot {args.command}: interrupted", file=sys.stderr)
        return 130
