"""Subcommand modules of the ``uglspot`` CLI; see ``uglspot.cli``.

A command module imports library code only, never another command or the
CLI: what two commands share (finding the command modules, argument types)
lives here.
"""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
from typing import Callable

from uglspot.limits import MAX_FPS, MAX_SECONDS


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


def frame_tolerances(text: str) -> tuple[int, ...]:
    """Distinct frame tolerances, comma-separated (``0,1,2,4``), in the order
    given, as an argparse type of ``eval frames --tolerances`` and ``report
    --tolerances``: the metric's own reader (``metrics.spotting.parse_tolerances``)."""
    from uglspot.app.evaluate import parse_tolerances

    try:
        return parse_tolerances(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_image_size(text: str) -> tuple[int, int]:
    """``SHORTxLONG`` (``448x800``), a detector's input size, as an argparse type."""
    try:
        short, long = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SHORTxLONG such as 448x800, got {text!r}") from None
    return short, long


def frame_rate_or_native(text: str) -> float | None:
    """A frame rate (:func:`frame_rate`), or ``native`` (None: each file's own rate)."""
    if text.lower() == "native":
        return None
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a frame rate such as 2 or 25, or `native`, got {text!r}") from None
    return frame_rate(text)


def frame_rate(text: str) -> float:
    """A finite frame rate above 0 and at most ``MAX_FPS``."""
    value = _number(text, float)
    if not 0 < value <= MAX_FPS:
        raise argparse.ArgumentTypeError(f"must be a frame rate above 0 and at most {MAX_FPS:g}, got {text!r}")
    return value


def duration(text: str) -> float:
    """A finite length in seconds above 0 and at most ``MAX_SECONDS``."""
    value = _number(text, float)
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be a length in seconds above 0 and at most {MAX_SECONDS:g}, "
                                         f"got {text!r}")
    return value


def non_negative_seconds(text: str) -> float:
    """A finite length in seconds, 0 allowed, at most ``MAX_SECONDS``."""
    value = _number(text, float)
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be a length in seconds from 0 to {MAX_SECONDS:g}, got {text!r}")
    return value


# --- number types for command-line options: out of range is refused by argparse in one line
# naming the option (``argument --threshold: must be a number in [0, 1], got 'nan'``)


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A finite number in [0, 1] (thresholds, probabilities)."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def int_at_least(low: int, high: int = 2 ** 31 - 1) -> Callable[[str], int]:
    """An integer in [low, high]."""
    def parse(text: str) -> int:
        value = _number(text, int)
        if not low <= value <= high:
            bound = f">= {low}" if high == 2 ** 31 - 1 else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
