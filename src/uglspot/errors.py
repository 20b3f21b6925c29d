"""The one exception type that reaches the user as a single clear line."""

from __future__ import annotations

from typing import Sequence


class UserError(Exception):
    """Bad input or an environment problem the user can fix.

    The message says what was wrong, where (file, video, frame, key) and what
    to do. The CLI prints it as one line and exits non-zero, never a traceback.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what to do next (``uglspot train`` names the command that
    continues the run); the CLI prints it after ``interrupted``."""


class BatchFailures(UserError):
    """Raised after a command went on past bad inputs; lists every failure."""

    def __init__(self, what: str, failures: list[tuple[str, str]]):
        self.what, self.failures = what, failures
        if len(failures) == 1:  # one line
            super().__init__(f"1 {what} failed: {named(*failures[0])}")
            return
        lines = [f"{len(failures)} {what} failed:"]
        lines += [f"  {named(name, reason)}" for name, reason in failures]
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple:  # rebuilt from its arguments, e.g. in the parent of a worker process
        return type(self), (self.what, self.failures)


def listed(names: Sequence[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names`` and how many more: ``a, b, c and 4 more``."""
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def problems_error(header: str, problems: Sequence[str], shown: int = 3) -> UserError:
    """Many problems found at once as one line: the problem itself when there
    is one, else ``header: first; second; third (and N more)``."""
    if len(problems) == 1:
        return UserError(problems[0])
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return UserError(f"{header}: " + "; ".join(problems[:shown]) + more)


def named(name: str, reason: str) -> str:
    """``name: reason``, naming the input once: a reason that already starts
    with the name (``empty.json:1:1: malformed JSON``) is left as it is."""
    return reason if reason.startswith(name) else f"{name}: {reason}"


def brief(text: object, limit: int = 200) -> str:
    """The first line of ``text`` (an exception's message, say) in at most
    ``limit`` characters, for quoting inside one error line: a longer line
    ends at its last full sentence that fits, else at a word boundary with
    "…", never in the middle of a word."""
    line = next((part.strip() for part in str(text).splitlines() if part.strip()), "")
    if len(line) <= limit:
        return line
    head = line[:limit]
    sentence = head.rfind(". ")
    if sentence >= limit // 3:
        return head[:sentence + 1]
    space = head[:limit - 1].rfind(" ")
    return (head[:space] if space > 0 else head[:limit - 1]).rstrip(" ,;:") + "…"
