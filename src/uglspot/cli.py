"""The ``uglspot`` command line: a thin dispatcher over subcommand modules.

Each module in ``uglspot.commands`` exposes ``register(subparsers)``, which adds
its parser and sets ``func`` to a function taking the parsed arguments and
returning an exit code. Heavy imports (torch, av) happen inside those
functions so ``uglspot --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from uglspot import __version__
from uglspot.errors import UserError

# One entry per subcommand module, in the order --help lists them.
COMMAND_MODULES: tuple[str, ...] = (
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uglspot",
        description="Spot the exact frame and class of actions in long sports videos (UGL method).",
    )
    parser.add_argument("--version", action="version", version=f"uglspot {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"uglspot {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"uglspot {args.command}: interrupted", file=sys.stderr)
        return 130
