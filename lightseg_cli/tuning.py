"""Process-level allocator settings: a profile's ``allocator`` key, applied before its model is built.

glibc's malloc returns large blocks (the activations of a forward pass) to the kernel with munmap
and maps them again on the next pass: about 2,000 page faults per frame for ESPNet-sized models.
Raising the mmap and trim thresholds keeps that memory in the heap; measured here this makes
ESPNet/ESPNetv2 1.35-1.65x faster with identical outputs. ``mallopt`` changes the allocator for
every allocation from now on, so no environment variables or re-exec are needed. Profiles say
``allocator = "tuned"`` (all shipped ones but ``cpu-plain``) or ``"glibc"`` to keep glibc's defaults
(``cpu-plain``, the baseline the speed-ups are measured against). The first choice in a process
holds: thresholds once set are not undone.

With trimming off, memory freed in one of the per-thread arenas stays there, and a long pipelined
run grew by about 0.4 MB every 10 s (fragmentation across the stages' arenas; flat with glibc's
defaults). ``HeapTrim`` hands free pages back every few seconds instead of after every pass, which
keeps the speed and makes memory flat again.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

# glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024 * 1024 - 1
TOP_PAD = 1024 * 1024 * 1024

ALLOCATORS = ("tuned", "glibc")  # a profile's ``allocator`` values


_tuned_libc: ctypes.CDLL | None = None  # the libc whose thresholds were set, for HeapTrim


def tune_allocator(allocator: str = "tuned") -> bool:
    """With ``allocator="tuned"`` apply the thresholds on glibc; ``"glibc"`` leaves its defaults.
    Returns True when the thresholds are in effect."""
    global _tuned_libc
    if allocator not in ALLOCATORS:
        raise ValueError(f"allocator {allocator!r} is not one of {', '.join(ALLOCATORS)}")
    if _tuned_libc is not None:
        return True
    if allocator == "glibc" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    ok &= mallopt(_M_TRIM_THRESHOLD, min(TRIM_THRESHOLD, 2**31 - 1))
    ok &= mallopt(_M_TOP_PAD, TOP_PAD)
    _tuned_libc = libc if ok else None
    return bool(ok)


class HeapTrim:
    """Rate-limited ``malloc_trim(0)``, a no-op unless ``tune_allocator`` applied its thresholds."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.last = time.monotonic()
        self._trim = _tuned_libc.malloc_trim if _tuned_libc is not None else None

    def __call__(self) -> None:
        now = time.monotonic()
        if self._trim is not None and now - self.last >= self.every_s:
            self.last = now
            self._trim(0)

