"""CUDA twin of the binning kernels: one thread per event, atomics into the cube.

Launched on CuPy arrays (NumPy arrays under numba's CUDA simulator).
"""

from numba import cuda

from . import binning_element as el
from .jit import gpu_functions

__all__ = ["bin_events_cuda"]

_event_bin = gpu_functions(el).event_bin


@cuda.jit
def _bin_kernel(lon, lat, energy, p, scaled_edges, codes, cube):
    for i in range(cuda.grid(1), lon.shape[0], cuda.gridsize(1)):
        code = _event_bin(float(lon[i]), float(lat[i]), float(energy[i]), p, scaled_edges)
        codes[i] = code
        if code >= 0:
            cuda.atomic.add(cube, code, 1.0)


def bin_events_cuda(xp, lon, lat, energy, p, scaled_edges, cube, grid):
    """Add the counted events to ``cube`` on the device and return every event's code.

    ``grid(n)`` gives the ``(blocks, threads)`` launch configuration for ``n`` items.
    """
    codes = xp.empty(lon.shape[0], dtype=xp.int64)
    if lon.shape[0]:
        _bin_kernel[grid(lon.shape[0])](lon, lat, energy, p, scaled_edges, codes, cube)
    return codes
