"""On/off counting compiled with numba: serial for a bunch, parallel blocks for big lists."""

import numba
import numpy as np

from ..jit import cpu, cpu_functions, cpu_kernel
from ..launch import EVENT_PARALLEL_THRESHOLD, PARALLEL_THRESHOLD
from . import element as el

__all__ = ["count_in_circles", "count_numba"]

_f = cpu_functions(el)
_status = _f.event_status
_bounds_offset = _f.bounds_offset
_member = _f.member_code
_screen_event = _f.screen_event
_AMBIGUOUS = el.AMBIGUOUS
_INVALID = el.INVALID
#: Events per block of the parallel kernel (each block has its own partial counts).
BLOCK_EVENTS = PARALLEL_THRESHOLD


def _count_range_source(ra, dec, energy, circles, bounds, edges, etol, start, stop, out, ambiguous):
    """Count events ``start:stop`` into ``out``; ambiguous indices from ``ambiguous[start]``."""
    n_circles = circles.shape[1]
    n_ambiguous = 0
    n_invalid = 0
    for i in range(start, stop):
        r = float(ra[i])
        d = float(dec[i])
        status = _status(r, d, float(energy[i]), circles, bounds, edges, etol)
        if status >= 0:
            dra = _bounds_offset(r, d, bounds)
            n_inside, first, n_band = _screen_event(dra, d, circles)
            if n_inside == 1 and n_band == 0:  # the usual case: one circle, screened
                out[first, status] += 1.0
                if first > 0:
                    out[n_circles, status] += 1.0
            else:
                off = False
                for k in range(n_circles):
                    if _member(r, d, dra, circles, k) == 1:
                        out[k, status] += 1.0
                        if k > 0:
                            off = True
                if off:
                    out[n_circles, status] += 1.0
        elif status == _AMBIGUOUS:
            ambiguous[start + n_ambiguous] = i
            n_ambiguous += 1
        elif status == _INVALID:
            n_invalid += 1
    return n_ambiguous, n_invalid


_count_range = cpu(_count_range_source)


def _serial_source(ra, dec, energy, circles, bounds, edges, etol, out, ambiguous, stats):
    n_ambiguous, n_invalid = _count_range(
        ra, dec, energy, circles, bounds, edges, etol, 0, ra.shape[0], out, ambiguous
    )
    stats[0, 0] = n_ambiguous
    stats[0, 1] = n_invalid


def _parallel_source(ra, dec, energy, circles, bounds, edges, etol, partial, ambiguous, stats):
    n_blocks = partial.shape[0]
    for b in numba.prange(n_blocks):
        start = b * BLOCK_EVENTS
        stop = min(start + BLOCK_EVENTS, ra.shape[0])
        n_ambiguous, n_invalid = _count_range(
            ra, dec, energy, circles, bounds, edges, etol, start, stop, partial[b], ambiguous
        )
        stats[b, 0] = n_ambiguous
        stats[b, 1] = n_invalid


_serial = cpu_kernel(_serial_source)
_parallel = cpu_kernel(_parallel_source, parallel=True)


def count_numba(ra, dec, energy, circles, bounds, edges, etol, out):
    """numba twin of :func:`~rtafast_kernels.regions.reference.count_numpy`."""
    n = ra.shape[0]
    ambiguous = np.empty(n, dtype=np.int64)
    if n <= EVENT_PARALLEL_THRESHOLD:
        stats = np.zeros((1, 2), dtype=np.int64)
        _serial(ra, dec, energy, circles, bounds, edges, float(etol), out, ambiguous, stats)
        return ambiguous[: stats[0, 0]].copy(), int(stats[0, 1])
    n_blocks = -(-n // BLOCK_EVENTS)
    partial = np.zeros((n_blocks,) + out.shape)
    stats = np.zeros((n_blocks, 2), dtype=np.int64)
    _parallel(ra, dec, energy, circles, bounds, edges, float(etol), partial, ambiguous, stats)
    out += partial.sum(axis=0)
    starts = np.arange(n_blocks) * BLOCK_EVENTS
    picked = [ambiguous[s : s + m] for s, m in zip(starts, stats[:, 0], strict=True) if m]
    found = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    return found, int(stats[:, 1].sum())


def count_in_circles(backend, ra, dec, energy, circles, bounds, edges, etol, out):
    """Operation ``count_in_circles`` (numba): see ``reference.count_numpy``."""
    return count_numba(ra, dec, energy, circles, bounds, edges, etol, out)
