"""keep_freed_memory: glibc serves blocks below 32 MiB from its heap and
keeps what is freed there, so a training step's buffers are not fresh pages
every step; the user's own malloc settings win. Each case runs in a fresh
interpreter, as malloc's settings belong to the process."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# In a fresh interpreter: whether keep_freed_memory took effect, then for a
# 24 MiB tensor how much of it glibc mapped as its own pages (MiB), and the
# heap's free memory once it was deleted (MiB).
PROBE = """
import ctypes, sys, torch
from uglspot.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                      "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
took = keep_freed_memory() if sys.argv[1] == "keep" else None
before = libc.mallinfo2().hblkhd
block = torch.empty(24 * 2**18)  # 24 MiB of float32
mapped = libc.mallinfo2().hblkhd - before
del block
print(took, mapped / 2**20, libc.mallinfo2().fordblks / 2**20)
"""


def has_mallinfo2() -> bool:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")


glibc_only = pytest.mark.skipif(not has_mallinfo2(), reason="needs Linux with glibc 2.33 or later (mallinfo2)")


def probe(mode: str, **env: str) -> tuple[str, float, float]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES", "UGLSPOT_DEFAULT_MALLOC")}
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                            env={**clean, "PYTHONPATH": str(SRC), **env})
    took, mapped, free = result.stdout.split()
    return took, float(mapped), float(free)


@glibc_only
def test_a_block_below_32_mib_comes_from_the_heap_and_stays_there_when_freed():
    took, mapped, free = probe("keep")
    assert took == "True"
    assert mapped == 0  # not pages of its own, handed back to the kernel on free
    assert free >= 24  # freed into the heap, ready for the next step's block


@glibc_only
def test_without_it_glibc_maps_that_block_on_its_own():
    took, mapped, free = probe("default")
    assert took == "None"
    assert mapped >= 24  # what the setting saves: a fresh mapping for each such block
    assert free < 24


@glibc_only
@pytest.mark.parametrize("env", [{"MALLOC_TRIM_THRESHOLD_": "131072"},
                                 {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"},
                                 {"UGLSPOT_DEFAULT_MALLOC": "1"}])
def test_the_users_own_malloc_settings_win(env):
    took, mapped, _ = probe("keep", **env)
    assert took == "False"
    assert mapped >= 24
