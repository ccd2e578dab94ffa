"""Process-wide memory settings for long CPU jobs (training runs, dataset preparation)."""

from __future__ import annotations

import ctypes
import functools
import platform

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
