"""Time-domain family, numba: the element loops compiled for the CPU, parallel over
series (each series' windows in one thread; serial below :data:`PARALLEL_SERIES`)."""

import numba
import numpy as np

from ..jit import cpu_functions, cpu_kernel
from . import element

__all__ = ["cusum", "lift", "stretch_lima"]

_f = cpu_functions(element)
_stretch_window = _f.stretch_window
_cusum_series = _f.cusum_series
_lift_window = _f.lift_window
#: Series below which the kernels run serially (one afterglow in the pipeline).
PARALLEL_SERIES = 8


def _stretch_source(on, off, alpha, first, out):
    for s in numba.prange(on.shape[0]):
        for k in range(first, on.shape[1]):
            out[s, k] = _stretch_window(on, off, alpha[s], s, k)


def _cusum_source(on, off, alpha, livetime, ratio, out):
    for s in numba.prange(on.shape[0]):
        _cusum_series(on, off, alpha[s], livetime, ratio, s, out)


def _lift_source(on, off, alpha, livetime, weights, first, out):
    for s in numba.prange(on.shape[0]):
        scale = np.empty(on.shape[1])
        for k in range(first, on.shape[1]):
            out[s, k] = _lift_window(on, off, alpha[s], livetime, weights, s, k, scale)


def _compiled(source):
    return {parallel: cpu_kernel(source, parallel=parallel, error_model="numpy")
            for parallel in (False, True)}


_STRETCH = _compiled(_stretch_source)
_CUSUM = _compiled(_cusum_source)
_LIFT = _compiled(_lift_source)


def stretch_lima(backend, on, off, alpha, first, out):
    """Operation ``stretch_lima`` (numba); see the family's docstring."""
    _STRETCH[on.shape[0] >= PARALLEL_SERIES](on, off, alpha, int(first), out)
    return out


def cusum(backend, on, off, alpha, livetime, ratio, out):
    """Operation ``cusum`` (numba)."""
    _CUSUM[on.shape[0] >= PARALLEL_SERIES](on, off, alpha, livetime, float(ratio), out)
    return out


def lift(backend, on, off, alpha, livetime, weights, first, out):
    """Operation ``lift`` (numba)."""
    _LIFT[on.shape[0] >= PARALLEL_SERIES](on, off, alpha, livetime, weights, int(first), out)
    return out
