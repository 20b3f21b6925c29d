"""How the process gets its memory from the C library.

A CPU training step frees and re-allocates the same activations and
gradients every step. With glibc's defaults a freed block of 128 KiB to
32 MiB often goes back to the kernel, and the next step's block of that
size is new pages, each faulted in and zeroed: time spent on nothing. The
``uglspot`` command asks glibc to keep freed memory for reuse instead
(docs/performance.md, "Memory the process frees"); Python users can call
``keep_freed_memory`` themselves.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 2**20  # the most glibc accepts on 64-bit: smaller blocks come from the heap
TRIM_THRESHOLD = 2**30  # free memory at the heap's top that glibc keeps rather than hands back
MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
OPT_OUT = "UGLSPOT_DEFAULT_MALLOC"  # set to 1: leave glibc's malloc as it is


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve blocks below 32 MiB from its heap and keep
    up to 1 GiB of freed memory there for the next blocks. The process then
    holds about its peak memory until it ends, instead of giving the freed
    part back between steps.

    Returns whether the setting took effect: nothing changes off Linux with
    glibc, with ``UGLSPOT_DEFAULT_MALLOC=1``, or where the user set glibc's
    malloc options (``MALLOC_*_`` or ``glibc.malloc`` in ``GLIBC_TUNABLES``)
    themselves.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        return False
    if any(name in os.environ for name in MALLOC_ENV) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                       TRIM_THRESHOLD))
