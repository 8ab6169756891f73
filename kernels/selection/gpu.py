"""CUDA twin of the selection kernel (one thread per event)."""

from numba import cuda

from ..jit import gpu_functions
from ..launch import grid
from . import element as el

__all__ = ["select_cuda", "select_events"]

_event_selected = gpu_functions(el).event_selected


@cuda.jit
def _select_kernel(time, energy, ra, dec, p, intervals, codes):
    for i in range(cuda.grid(1), time.shape[0], cuda.gridsize(1)):
        codes[i] = _event_selected(
            float(time[i]), float(energy[i]), float(ra[i]), float(dec[i]), p, intervals
        )


def select_cuda(xp, time, energy, ra, dec, p, intervals):
    """Selection codes of every event, computed on the device."""
    codes = xp.empty(time.shape[0], dtype=xp.int8)
    if time.shape[0]:
        _select_kernel[grid(time.shape[0])](time, energy, ra, dec, p, intervals, codes)
    return codes


def select_events(backend, time, energy, ra, dec, params, intervals):
    """Operation ``select_events`` (cuda): codes on the device."""
    return select_cuda(backend.xp, time, energy, ra, dec, params, intervals)
