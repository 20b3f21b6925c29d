"""Subcommand modules of the ``uglspot`` CLI; see ``uglspot.cli``.

A command module imports library code only, never another command or the
CLI: what two commands share (finding the command modules, argument types)
lives here.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def command_modules(hook: str = "register") -> list:
    """Modules of ``uglspot.commands`` that define ``hook``, in ``ORDER``."""
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__)]
    modules = [m for m in modules if hasattr(m, hook)]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (``398x224``) as an argparse type."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 398x224, got {text!r}") from None
    return width, height
