"""One writer per output folder.

A command that writes into a folder (a run, a frame cache, entity stores,
spot results) holds :func:`output_lock` on it for as long as it runs; a
second command into the same folder is refused at once with one line naming
the holder, instead of both "succeeding" with their outputs mixed.

The lock is ``fcntl.flock`` on ``FOLDER/.uglspot.lock``: the kernel releases
it when its process ends, however it ends, so a lock left by a killed
process is simply taken over (with a note naming it). The file holds the
holder's pid, host, command and start time for the refusal message; the
holder removes it when it is done.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from uglspot.errors import UserError

LOCK_NAME = ".uglspot.lock"


@contextlib.contextmanager
def output_lock(folder: str | Path, command: str) -> Iterator[Path]:
    """Hold ``folder``'s lock (creating the folder) for the ``with`` block;
    yields the lock file's path. Raises :class:`UserError` naming the holder
    when another process holds it. A folder this call created is removed
    again if the block leaves it empty."""
    folder = Path(folder)
    created = _make_folder(folder)
    path = folder / LOCK_NAME
    try:
        fd = _acquire(path, command)
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    try:
        yield path
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)  # while still holding it, so a waiting opener sees a removed file and retries
            os.close(fd)
        _remove_if_empty(folder, created)


@contextlib.contextmanager
def new_output(folder: str | Path, command: str, refusal: str) -> Iterator[Path]:
    """:func:`output_lock` for a command that writes only into a new or
    empty folder: raises :class:`UserError` with ``refusal`` when ``folder``
    holds anything, before taking the lock and again once it holds it (two
    commands started at once would both have found it empty)."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or not holds_nothing_else(folder)):  # a held lock: refused below
        raise UserError(refusal)
    with output_lock(folder, command) as path:
        if not holds_nothing_else(folder):
            raise UserError(refusal)
        yield path


def holds_nothing_else(folder: str | Path) -> bool:
    """Whether ``folder`` is empty but for its lock file: what a command that
    writes only into a new or empty folder checks once it holds the lock (two
    started at once would both have found it empty before)."""
    return all(entry.name == LOCK_NAME for entry in Path(folder).iterdir())


def _make_folder(folder: Path) -> bool:
    """Create ``folder`` if needed; whether it was created."""
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        if folder.is_dir():
            return False
        raise UserError(f"{folder}: exists and is not a folder; choose another output folder") from None
    except OSError as exc:
        raise UserError(f"{folder}: cannot create the output folder ({exc.strerror}); "
                        "choose another output folder") from None
    return True


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _acquire(path: Path, command: str) -> int | None:
    """An open descriptor of ``path`` holding its lock (None where the file
    system cannot lock); raises UserError when another process holds it."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)  # umask applies
        except OSError as exc:
            what = "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be opened ({exc.strerror})"
            raise UserError(f"{path}: the output folder's lock file {what}; remove it if no uglspot command "
                            "is writing there") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(f"{path.parent}: in use by {holder}; wait for it to finish, or choose another "
                            "output folder") from None
        except OSError as exc:  # a file system without locks (some network or FUSE mounts)
            os.close(fd)
            from uglspot.progress import note

            note(f"{path.parent}: cannot be locked ({exc.strerror}); do not start a second command into it "
                 "while this one runs")
            return None
        if _same_file(fd, path):
            break
        os.close(fd)  # the holder finished and removed the file between our open and our lock: try again
    left = _read(fd)
    if left:
        from uglspot.progress import note

        note(f"{path.parent}: taking over the lock of {_describe(left)}, which ended without releasing it")
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _read(fd: int) -> dict | None:
    """The holder record in the lock file, or None when it is empty or torn."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _holder(fd: int) -> str:
    """Who holds the lock, from its record; a holder that has only just
    taken it may not have written its record yet, so wait a moment for it."""
    for _ in range(20):
        record = _read(fd)
        if record:
            return _describe(record)
        time.sleep(0.05)
    return "another uglspot command (it has not written who it is)"


def _describe(record: dict) -> str:
    return (f"uglspot {record.get('command', '?')} (pid {record.get('pid', '?')} on host "
            f"{record.get('host', '?')}, started {record.get('started', '?')})")
