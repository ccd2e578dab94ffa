"""Process-wide memory settings for long CPU jobs (training runs, dataset preparation), and the
cap on what an input may make xfer allocate (relative to the memory available)."""

from __future__ import annotations

import ctypes
import functools
import os
import platform

from xfer.errors import XferError

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)


@functools.cache  # process-wide: one call settles it
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    glibc serves every allocation of 32 MB or more (one [4, 1024, 2560] fp32 activation of the
    paper model is 42 MB) with a fresh ``mmap`` and unmaps it on ``free``, so each training
    step page-faults its large activations in again, and data preparation its large arrays
    (the gain: ``bench/train_throughput.py``). Allocations no longer use ``mmap`` and the heap
    is never trimmed, so the process keeps its peak memory (its next step needs it again).
    Applies to the whole process, from the call on; allocations of threads with their own
    malloc arena that exceed its 64 MB heaps still use ``mmap``. Returns False (nothing
    changed) where the C library is not glibc.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


MEMORY_SHARE = 0.8  # of the memory available: the most one input may make xfer allocate


def available_memory() -> int | None:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; else the
    free physical pages), or None when the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_allocation(n_bytes: int, what: str) -> None:
    """Refuse (XferError naming ``what``) an allocation of ``n_bytes`` that an input asks for
    beyond :data:`MEMORY_SHARE` of the memory available, before it is made."""
    available = available_memory()
    if available is not None and n_bytes > MEMORY_SHARE * available:
        raise XferError(f"{what} needs {n_bytes / 2**30:.2f} GiB, more than "
                        f"{MEMORY_SHARE:.0%} of the {available / 2**30:.2f} GiB of memory "
                        "available")
