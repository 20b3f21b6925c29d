"""The ``uglspot`` command line: a thin dispatcher over subcommand modules.

Every module in the ``uglspot.commands`` package that defines
``register(subparsers)`` is a command: it adds its parser and sets ``func`` to
a function taking the parsed arguments and returning an exit code. Heavy
imports (torch, av) happen inside those functions so ``uglspot --help`` stays
instant. A module's ``ORDER`` (default 100) places it in ``--help``.

Whatever goes wrong, the terminal gets one line: a ``UserError`` (bad input,
exit 1), a bad option (exit 2), or, for an unexpected exception, the
exception and the path of a log with the full traceback to file a report
with (exit 2).
"""

from __future__ import annotations

import argparse
import sys

from uglspot import __version__
from uglspot.commands import command_modules
from uglspot.errors import UserError, brief
from uglspot.memory import keep_freed_memory


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command and option."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    keep_freed_memory()  # a command's steps reuse the memory the last one freed (uglspot.memory)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"uglspot {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt as exc:  # an Interrupted says what to do next
        advice = f"; {exc}" if str(exc) else ""
        print(f"uglspot {args.command}: interrupted{advice}", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unforeseen case: one line here, the traceback in a log
        log = write_crash_log(argv if argv is not None else sys.argv[1:])
        what = brief(exc)
        print(f"uglspot {args.command}: internal error: {type(exc).__name__}{': ' + what if what else ''}; "
              f"the full log is in {log}; please report it with that file", file=sys.stderr)
        return 2


def write_crash_log(argv: list[str]) -> str:
    """Write the current exception's traceback, the command line and versions
    to a new file in the temporary folder; returns its path."""
    import platform
    import tempfile
    import time
    import traceback

    fd, path = tempfile.mkstemp(prefix=f"uglspot-error-{time.strftime('%Y%m%d-%H%M%S')}-", suffix=".log")
    versions = [f"uglspot {__version__}", f"python {platform.python_version()}", platform.platform()]
    torch = sys.modules.get("torch")
    if torch is not None:
        versions.append(f"torch {getattr(torch, '__version__', '?')}")
    with open(fd, "w", encoding="utf-8") as handle:
        handle.write("command: uglspot " + " ".join(map(str, argv)) + "\n")
        handle.write("versions: " + ", ".join(versions) + "\n\n")
        handle.write(traceback.format_exc())
    return path
