"""Keeping the network's working memory between calls, on Linux with glibc.

A U-Net call at 1024 or 2048 pixels allocates and frees activations of hundreds of megabytes to
gigabytes. glibc serves blocks that large with mmap and hands them back to the kernel with munmap
when freed, so the next call faults every page in again, zeroed by the kernel: on a 512 -> 2048
restoration half the CPU time was the kernel's. `keep_freed_memory()` tells glibc (mallopt, the
calls behind the MALLOC_MMAP_MAX_ and MALLOC_TRIM_THRESHOLD_ environment variables) to serve
every block from its heap and not to return freed memory to the kernel, so the second call reuses
the first call's pages. The price is memory: the heap keeps its peak for the process's life, and
blocks freed in its middle are reused less tightly than mmap's, so the peak is higher (measured:
13.2 GB against 8.8 GB for a 2048 x 2048 restoration, 3.9 against 2.8 GB at 1024; docs/usage/sizes.md).
restore.models.network plans with that in mind: where a run fits the free memory only with glibc's
default behaviour, `give_back_freed_memory()` restores it for the process (and says so).

A no-op where glibc's mallopt is not there (macOS, Windows, musl), and where the person set either
variable themselves. The command-line tools and the page call `keep_freed_memory()` at start
(restore.cli.options.run_cli); a library user may call it once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h), and their defaults
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
#: a kept heap's peak over glibc's default one, measured (13.2 / 8.8 GB at 2048, 3.9 / 2.8 at 1024), rounded up
KEPT_PEAK_FACTOR = 1.6
_applied: bool | None = None
_mallopt = None


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory (see the module docstring); returns
    whether glibc took the setting. Idempotent."""
    global _applied, _mallopt
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MALLOC_MMAP_MAX_") is not None or os.environ.get("MALLOC_TRIM_THRESHOLD_") is not None:
        return _applied  # the person's own tuning wins
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _mallopt = mallopt
    # no block by mmap, and no trimming of the heap's top at all (mallopt(3): -1 disables it)
    _applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
    return _applied


def kept() -> bool:
    """Whether this process keeps freed memory (keep_freed_memory took effect)."""
    return bool(_applied)


def give_back_freed_memory() -> None:
    """glibc's default behaviour again (large blocks by mmap, freed memory returned), for a run that
    fits the free memory only that way."""
    global _applied
    if _applied and _mallopt is not None:
        _mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        _mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        _applied = False
