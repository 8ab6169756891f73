"""Give the memory freed by a finished observation back to the operating system.

glibc's allocator keeps freed blocks in its arenas (one per thread that allocated:
the main thread, numba's and astropy's worker threads) and returns the top of the
heap only; over a long replay the holes left by each window's temporary arrays add up.
Measured on the 15 PKS 2155-304 runs as 1 s bunches (2-core VM, numba backend):
without trimming, the resident memory rose from 519 to 693 MiB (first to last tenth of
the windows, +33.6 %) while the live Python objects stayed flat; ``malloc_trim(0)``
at an observation change took the resident set of the next run back by ~100 MiB.
"""

import ctypes
import ctypes.util
import gc

__all__ = ["release_free_memory"]


def _malloc_trim():
    """glibc's ``malloc_trim`` (None on other C libraries: musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def release_free_memory():
    """Collect garbage (every generation), then hand the allocator's free pages back to
    the system where the C library can (glibc: ``malloc_trim(0)``; elsewhere a no-op).

    Returns
    -------
    trimmed : bool
        Whether memory could be given back (glibc's answer; False without glibc).
    """
    gc.collect()
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
