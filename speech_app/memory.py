"""Memory allocator settings for a process that owns its run (the CLI's batch commands).

glibc's malloc hands blocks over its mmap threshold (128 KiB at first) straight back to the system when
they are freed, and trims the free top of each heap; the next batch's tensors and arrays of the same
sizes then come back as fresh pages, each faulted in and zeroed by the kernel. Classifying one-second
clips in batches of 64, that was 20-50 page faults a clip (benchmarks/bench.py, classify section).
`keep_freed_memory` raises both limits, so the freed blocks are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's largest: blocks up to this come from the heap and are reused
TRIM_THRESHOLD_BYTES = 128 << 20  # free memory kept at a heap's top instead of given back at every free


def keep_freed_memory() -> bool:
    """Keep freed blocks for reuse instead of returning them to the system; True where it took effect
    (glibc: Linux), False elsewhere (other allocators keep their own policies)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
