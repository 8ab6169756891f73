"""Time-domain family, CUDA: the element loops as device functions, one thread per
series (grid-stride). Launched on CuPy arrays, NumPy arrays under numba's simulator.

LiFT needs a scratch row per series for the background of each bunch: a device array
``(n_series, n_bunches)`` allocated by the host wrapper.
"""

from numba import cuda

from ..jit import gpu_functions
from ..launch import THREADS, blocks
from . import element

__all__ = ["cusum", "lift", "stretch_lima"]

_f = gpu_functions(element)
_stretch_window = _f.stretch_window
_cusum_series = _f.cusum_series
_lift_window = _f.lift_window


@cuda.jit
def _stretch_kernel(on, off, alpha, first, out):
    for s in range(cuda.grid(1), on.shape[0], cuda.gridsize(1)):
        for k in range(first, on.shape[1]):
            out[s, k] = _stretch_window(on, off, alpha[s], s, k)


@cuda.jit
def _cusum_kernel(on, off, alpha, livetime, ratio, out):
    for s in range(cuda.grid(1), on.shape[0], cuda.gridsize(1)):
        _cusum_series(on, off, alpha[s], livetime, ratio, s, out)


@cuda.jit
def _lift_kernel(on, off, alpha, livetime, weights, first, scratch, out):
    for s in range(cuda.grid(1), on.shape[0], cuda.gridsize(1)):
        scale = scratch[s]
        for k in range(first, on.shape[1]):
            out[s, k] = _lift_window(on, off, alpha[s], livetime, weights, s, k, scale)


def stretch_lima(backend, on, off, alpha, first, out):
    """Operation ``stretch_lima`` (cuda)."""
    _stretch_kernel[blocks(on.shape[0]), THREADS](on, off, alpha, int(first), out)
    return out


def cusum(backend, on, off, alpha, livetime, ratio, out):
    """Operation ``cusum`` (cuda)."""
    _cusum_kernel[blocks(on.shape[0]), THREADS](on, off, alpha, livetime, float(ratio), out)
    return out


def lift(backend, on, off, alpha, livetime, weights, first, out):
    """Operation ``lift`` (cuda)."""
    scratch = backend.xp.empty(on.shape)
    _lift_kernel[blocks(on.shape[0]), THREADS](
        on, off, alpha, livetime, weights, int(first), scratch, out
    )
    return out
