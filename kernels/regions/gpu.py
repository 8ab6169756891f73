"""CUDA twin of on/off counting: one thread per event, atomics into a small
(n_circles + 1, n_energy) array; ambiguous events listed through an atomic counter."""

import numpy as np
from numba import cuda

from ..jit import gpu_functions
from ..launch import grid
from . import element as el

__all__ = ["count_cuda", "count_in_circles"]

_f = gpu_functions(el)
_status = _f.event_status
_bounds_offset = _f.bounds_offset
_member = _f.member_code
_screen_event = _f.screen_event
_AMBIGUOUS = el.AMBIGUOUS
_INVALID = el.INVALID


@cuda.jit
def _count_kernel(ra, dec, energy, circles, bounds, edges, etol, out, ambiguous, stats):
    n_circles = circles.shape[1]
    for i in range(cuda.grid(1), ra.shape[0], cuda.gridsize(1)):
        r = float(ra[i])
        d = float(dec[i])
        status = _status(r, d, float(energy[i]), circles, bounds, edges, etol)
        if status >= 0:
            dra = _bounds_offset(r, d, bounds)
            n_inside, first, n_band = _screen_event(dra, d, circles)
            if n_inside == 1 and n_band == 0:  # the usual case: one circle, screened
                cuda.atomic.add(out, (first, status), 1.0)
                if first > 0:
                    cuda.atomic.add(out, (n_circles, status), 1.0)
            else:
                off = False
                for k in range(n_circles):
                    if _member(r, d, dra, circles, k) == 1:
                        cuda.atomic.add(out, (k, status), 1.0)
                        if k > 0:
                            off = True
                if off:
                    cuda.atomic.add(out, (n_circles, status), 1.0)
        elif status == _AMBIGUOUS:
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
