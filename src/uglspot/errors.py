"""The one exception type that reaches the user as a single clear line."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an environment problem the user can fix.

    The message says what was wrong, where (file, video, frame, key) and what
    to do. The CLI prints it as one line and exits non-zero, never a traceback.
    """


class BatchFailures(UserError):
    """Raised after a command went on past bad inputs; lists every failure."""

    def __init__(self, what: str, failures: list[tuple[str, str]]):
        self.failures = failures
        if len(failures) == 1:  # one line, naming the input once
            name, reason = failures[0]
            super().__init__(f"1 {what} failed: {reason if reason.startswith(name) else f'{name}: {reason}'}")
            return
        lines = [f"{len(failures)} {what} failed:"]
        lines += [f"  {name}: {reason}" for name, reason in failures]
        super().__init__("\n".join(lines))
