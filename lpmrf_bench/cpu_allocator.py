"""Keep freed memory inside the process (glibc), so CPU inference stops page-faulting its activations back in.

glibc serves allocations above its mmap threshold (128 KiB at start, raised as large blocks are freed, to at most
32 MiB) straight from the kernel and unmaps them on free, so each new activation of a few MB is mapped and
zero-filled again. A CPU forward pass allocates and frees such blocks in every layer: the 64 px latent flow spent
about 45% of its time there (160 -> 88 ms per batch of 16 on 2 cores; benchmarks/cpu_inference.py). PyTorch's CPU
tuning guides swap in jemalloc or tcmalloc for this; glibc's own thresholds give the same effect without a
preloaded library. The cost: the process keeps its peak heap until it exits, which suits a command-line run.
"""
from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 * 2**20  # the largest M_MMAP_THRESHOLD glibc accepts on 64-bit systems
NEVER_TRIM = 2**31 - 1

_retaining = False


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False (nothing changed) where libc is not glibc."""
    global _retaining
    if sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other libcs
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _retaining = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))
    return _retaining


def retaining_freed_memory() -> bool:
    """Whether `retain_freed_memory` took effect in this process (recorded with every run's environment)."""
    return _retaining
