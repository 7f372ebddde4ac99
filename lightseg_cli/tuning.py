"""Process-level settings the CLI applies at start-up: a faster allocator, a quieter OpenCV.

glibc's malloc returns large blocks (the activations of a forward pass) to the kernel with munmap
and maps them again on the next pass: about 2,000 page faults per frame for ESPNet-sized models.
Raising the mmap and trim thresholds keeps that memory in the heap; measured here this makes
ESPNet/ESPNetv2 1.35-1.65x faster with identical outputs. ``mallopt`` changes the allocator for
every allocation from now on, so no environment variables or re-exec are needed. Set
``LIGHTSEG_MALLOC=default`` to keep glibc's defaults (e.g. to measure the difference).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 4 * 1024 * 1024 * 1024 - 1
TOP_PAD = 1024 * 1024 * 1024


def tune_allocator() -> bool:
    """Apply the thresholds on glibc; returns True when applied."""
    if os.environ.get("LIGHTSEG_MALLOC", "").lower() == "default" or not sys.platform.startswith("linux"):
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
    return bool(ok)


def quiet_opencv() -> None:
    """OpenCV prints its own warnings (e.g. for a missing camera); lightseg reports errors itself."""
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        pass
