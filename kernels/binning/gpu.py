"""CUDA twin of the binning kernels: one thread per event, atomics into the cube.

Launched on CuPy arrays (NumPy arrays under numba's CUDA simulator).
"""

from numba import cuda

from ..jit import gpu_functions
from ..launch import grid
from . import element as el
from .reference import outcome_from_codes

__all__ = ["bin_events_cuda", "bin_events", "scatter_add"]

_event_bin = gpu_functions(el).event_bin


@cuda.jit
def _bin_kernel(lon, lat, energy, p, scaled_edges, codes, cube):
    for i in range(cuda.grid(1), lon.shape[0], cuda.gridsize(1)):
        code = _event_bin(float(lon[i]), float(lat[i]), float(energy[i]), p, scaled_edges)
        codes[i] = code
        if code >= 0:
            cuda.atomic.add(cube, code, 1.0)


@cuda.jit
def _scatter_add_kernel(cube, codes, weight):
    for i in range(cuda.grid(1), codes.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(cube, codes[i], weight)


def bin_events_cuda(xp, lon, lat, energy, p, scaled_edges, cube):
    """Add the counted events to ``cube`` on the device and return every event's code."""
    codes = xp.empty(lon.shape[0], dtype=xp.int64)
    if lon.shape[0]:
        _bin_kernel[grid(lon.shape[0])](lon, lat, energy, p, scaled_edges, codes, cube)
    return codes


def bin_events(backend, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
    """Operation ``bin_events`` (cuda): a ``BinOutcome`` whose codes stay on the device."""
    codes = bin_events_cuda(backend.xp, lon, lat, energy, params, scaled_edges, cube)
    return outcome_from_codes(backend.xp, codes, keep_codes, backend.to_numpy)


def scatter_add(backend, cube, codes, weight):
    """Operation ``scatter_add`` (cuda): ``cube[codes] += weight`` with atomics."""
    if codes.shape[0]:
        _scatter_add_kernel[grid(codes.shape[0])](cube, codes, float(weight))
