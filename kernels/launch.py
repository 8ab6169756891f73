"""Launch settings of every kernel family, in one place.

CPU (numba): reductions over bins run in fixed chunks of :data:`CHUNK` bins (the
partition, hence the rounding, does not depend on the thread count); below the
parallel thresholds the serial compilation of the same source runs (waking the thread
pool costs more than the loop). GPU (CUDA): grid-stride kernels of :data:`THREADS`
threads per block; under numba's CUDA simulator a tiny grid (2 blocks of 8 threads).
"""

import contextlib
import math
import os

import numba

__all__ = [
    "BIN_CHUNK_EVENTS",
    "CHUNK",
    "EVENT_PARALLEL_THRESHOLD",
    "MAX_BLOCKS",
    "PARALLEL_THRESHOLD",
    "SIMULATED",
    "THREADS",
    "TSMAP_MAX_BLOCKS",
    "blocks",
    "free_threads",
    "grid",
    "threads",
]

#: True under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``).
SIMULATED = bool(numba.config.ENABLE_CUDASIM)

#: Bins per numba reduction chunk.
CHUNK = 4096
#: Bins below which a reduction runs serially.
PARALLEL_THRESHOLD = 4 * CHUNK
#: Events below which selection and binning run serially (a real-time bunch).
EVENT_PARALLEL_THRESHOLD = 65536
#: Events per ``bin_events`` call, per backend: ~100 bytes of float64 temporaries per
#: event for numpy; numba measured slower with larger chunks (10^7 events: 59 ms in
#: 2^23-event chunks, 40 ms in 2^20); cuda keeps one int64 code per event on the device.
BIN_CHUNK_EVENTS = {"numpy": 1 << 20, "numba": 1 << 20, "cuda": 1 << 22}

#: CUDA threads per block (a power of two, for the shared-memory tree reductions).
THREADS = 8 if SIMULATED else 128
#: Most blocks of a grid-stride launch.
MAX_BLOCKS = 2 if SIMULATED else 1024
#: Most blocks of a TS-scan launch (each thread owns a scratch row; see tsmap.gpu).
TSMAP_MAX_BLOCKS = 2 if SIMULATED else 4096


def blocks(n, max_blocks=MAX_BLOCKS):
    """Blocks of :data:`THREADS` threads for ``n`` items of a grid-stride kernel."""
    return max(1, min(max_blocks, math.ceil(n / THREADS)))


def grid(n):
    """Launch configuration ``(blocks, threads)`` for ``n`` items (grid-stride kernels)."""
    return blocks(n), THREADS


def free_threads():
    """numba's threads less the other tasks running now (Linux; else all of numba's).

    A parallel region waits for its slowest thread: on a machine whose cores are busy
    with other work, a thread of ours that waits for a core stalls the whole call (by
    a scheduler time slice, milliseconds), where one serial thread would have gone
    on. So, like OpenMP's dynamic adjustment, a call uses only the cores that are
    free (the running-tasks count of ``/proc/loadavg``, this thread included).
    """
    n_threads = numba.get_num_threads()
    try:
        with open("/proc/loadavg", "rb") as loadavg:
            running = int(loadavg.read().split()[3].split(b"/")[0])
        cpus = len(os.sched_getaffinity(0))
    except (OSError, ValueError, IndexError, AttributeError):
        return n_threads
    return max(1, min(n_threads, cpus - max(0, running - 1)))


@contextlib.contextmanager
def threads(n_threads):
    """numba's parallel regions with ``n_threads`` threads, blocks handed out one at a
    time (dynamically: a thread descheduled by the machine does not hold the others)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        with numba.parallel_chunksize(1):
            yield
    finally:
        numba.set_num_threads(previous)
