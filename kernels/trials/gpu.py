"""Trials family, CUDA: the element fit as device functions, one thread per row
(grid-stride). Launched on CuPy arrays, NumPy arrays under numba's simulator.

Each thread gathers its rows' listed bins into its own row of a scratch array
``(n_threads, n_bins)`` int32 the host allocates; the grid is capped so that the scratch
stays within :data:`SCRATCH_BYTES`.
"""

from numba import cuda

from ..jit import gpu_functions
from ..launch import MAX_BLOCKS, THREADS, blocks
from . import element

__all__ = ["SCRATCH_BYTES", "fit_norm_rows"]

_fit_row = gpu_functions(element).fit_row
#: Most bytes of the listed-bins scratch (4 bytes per bin and thread).
SCRATCH_BYTES = 1 << 28


@cuda.jit
def _fit_kernel(counts, fixed, template, settings, listed, out):
    thread = cuda.grid(1)
    for r in range(thread, counts.shape[0], cuda.gridsize(1)):
        _fit_row(counts, r, fixed, template, settings, listed[thread], out)


def fit_norm_rows(backend, counts, fixed, template, settings, out):
    """Operation ``fit_norm_rows`` (cuda); see the family's docstring."""
    n_bins = counts.shape[1]
    cap = max(1, min(MAX_BLOCKS, SCRATCH_BYTES // (4 * THREADS * max(n_bins, 1))))
    grid = blocks(counts.shape[0], cap)
    listed = backend.xp.empty((grid * THREADS, n_bins), dtype=backend.xp.int32)
    _fit_kernel[grid, THREADS](counts, fixed, template, settings, listed, out)
    return out
