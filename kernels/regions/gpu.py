"""CUDA twin of on/off counting: one thread per event, atomics into a small
(n_circles + 1, n_energy) array; ambiguous events listed through an atomic counter."""

import numpy as np
from numba import cuda

from ..jit import gpu_device, gpu_functions
from ..launch import grid
from . import element as el
from . import exact as ex

__all__ = ["count_cuda", "count_in_circles"]


def _add_source(out, row, column):
    """``out[row, column] += 1``, atomically (threads share the counts)."""
    cuda.atomic.add(out, (row, column), 1.0)


#: The exact float64 path of one event (:func:`.exact.make_count_event`).
_count_event = ex.make_count_event(gpu_device, gpu_functions(el), gpu_device(_add_source))
_AMBIGUOUS = el.AMBIGUOUS
_INVALID = el.INVALID


@cuda.jit
def _count_kernel(ra, dec, energy, circles, bounds, edges, etol, out, ambiguous, stats):
    for i in range(cuda.grid(1), ra.shape[0], cuda.gridsize(1)):
        status = _count_event(i, ra, dec, energy, circles, bounds, edges, etol, out)
        if status == _AMBIGUOUS:
            slot = cuda.atomic.add(stats, 0, 1)
            ambiguous[slot] = i
        elif status == _INVALID:
            cuda.atomic.add(stats, 1, 1)


def count_cuda(xp, to_numpy, ra, dec, energy, circles, bounds, edges, etol, out):
    """Count on the device; return the ambiguous indices (host, ascending) and n_invalid."""
    n = ra.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    ambiguous = xp.empty(n, dtype=xp.int64)
    stats = xp.zeros(2, dtype=xp.int64)
    _count_kernel[grid(n)](
        ra, dec, energy, circles, bounds, edges, float(etol), out, ambiguous, stats
    )
    n_ambiguous, n_invalid = (int(v) for v in to_numpy(stats))
    found = np.sort(to_numpy(ambiguous[:n_ambiguous])) if n_ambiguous else np.zeros(0, np.int64)
    return found.astype(np.int64), n_invalid


def count_in_circles(backend, ra, dec, energy, circles, bounds, screen, edges, etol, out):
    """Operation ``count_in_circles`` (cuda): ``out`` on the device, updated in place
    (``screen``, the float32 screen of the numba kernel, is not used)."""
    return count_cuda(
        backend.xp, backend.to_numpy, ra, dec, energy, circles, bounds, edges, etol, out
    )
