"""Progress of long work, on stderr: a live bar on a terminal, plain lines
anywhere else (a log file, a pipe, CI), so a saved log holds no carriage
returns or terminal escape codes. Every progress display of uglspot comes
from :func:`progress_bar`; its label says what runs (the command or stage,
and the model where there is one: ``train ugl_rny002 epoch 1/6``)."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

LINE_SECONDS = 30.0  # plain lines: at most one per this many seconds, and one when the work ends


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal that can redraw a bar in place."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def progress_bar(desc: str, total: int | None = None, unit: str = "it", initial: int = 0,
                 disable: bool = False, position: int | None = None) -> Any:
    """A progress display over ``total`` units (None: unknown) with the
    tqdm surface the callers use (``update``, ``set_postfix``, ``close``, a
    context manager): tqdm on a terminal, :class:`LineProgress` otherwise."""
    if interactive():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, initial=initial, disable=disable, position=position,
                    file=sys.stderr, dynamic_ncols=True)
    return LineProgress(desc, total, unit, initial, disable)


class LineProgress:
    """Progress as plain lines on stderr, e.g.
    ``train ugl_rny002 epoch 1/6: 12/24 steps (50%), 31 s, loss=0.41``:
    one line every ``seconds`` while work goes on, and a last one at
    :meth:`close` unless it would repeat the one before (none when nothing
    was done)."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", initial: int = 0,
                 disable: bool = False, seconds: float = LINE_SECONDS):
        self.desc, self.total, self.unit, self.disable, self.seconds = desc, total, unit, disable, seconds
        self.n = self.initial = initial
        self.postfix: dict[str, str] = {}
        self.started = self.last = time.monotonic()
        self.closed = False
        self.shown = ""  # the counts and postfix of the last line

    def update(self, n: int = 1) -> None:
        if self.disable or self.closed:
            return
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self._line(now)

    def set_postfix(self, **values: Any) -> None:
        self.postfix = {key: str(value) for key, value in values.items()}

    def set_postfix_str(self, text: str) -> None:
        self.postfix = {"at": text} if text else {}

    def close(self) -> None:
        if self.disable or self.closed:
            return
        self.closed = True
        if self.n > self.initial:
            self._line(time.monotonic(), repeat=False)

    def _line(self, now: float, repeat: bool = True) -> None:
        self.last = now
        units = self.unit if self.n == 1 and not self.total else f"{self.unit}s"
        done = f"{self.n}/{self.total} {units} ({100 * self.n / self.total:.0f}%)" if self.total else f"{self.n} {units}"
        extra = "".join(f", {key}={value}" for key, value in self.postfix.items())
        if repeat or done + extra != self.shown:
            self.shown = done + extra
            print(f"{self.desc}: {done}, {now - self.started:.0f} s{extra}", file=sys.stderr, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def note(message: str) -> None:
    """One line of news on stderr (where the bars are), e.g. where a resumed
    run starts; on a terminal it is written above a live bar, not through it."""
    if interactive():
        from tqdm import tqdm

        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)
