"""WStat family, numba: the element math compiled for the CPU, parallel over chunks.

As in :mod:`rtafast_kernels.cash.cpu`: chunks of :data:`~rtafast_kernels.launch.CHUNK`
bins (results do not depend on the thread count), the serial compilation of the same
source below :data:`~rtafast_kernels.launch.PARALLEL_THRESHOLD` bins, per-chunk sums in
an array the host allocates, added in chunk order.
Compiled with ``error_model="numpy"``: a division by zero (inputs near the
floating-point underflow) gives inf/NaN as NumPy does, never ``ZeroDivisionError``.
"""

import numpy as np

from ..chunk_sums import triple_reduce_source
from ..jit import cpu, cpu_functions, cpu_kernel
from ..launch import CHUNK, PARALLEL_THRESHOLD
from . import element

__all__ = ["wstat_reduce"]

_add_bin = cpu_functions(element).wstat_add_bin


@cpu
def _add_bin_at(stat, grad, hess, n_on, n_off, alpha, signal, norm, i):
    """Bin ``i``'s half WStat value and derivatives in the norm, added
    (:func:`.element.wstat_add_bin`)."""
    return _add_bin(stat, grad, hess, n_on[i], n_off[i], alpha[i], signal[i], norm)


#: ``(n_on, n_off, alpha, signal, norm, partial, out)``: ``out = 2 * (stat, grad,
#: hess)`` in the norm; ``partial`` (nchunks, 3) per chunk.
_wstat_reduce_source = triple_reduce_source("wstat_reduce", _add_bin_at)


_KERNELS = {
    parallel: cpu_kernel(_wstat_reduce_source, parallel=parallel, error_model="numpy")
    for parallel in (False, True)
}


def wstat_reduce(backend, n_on, n_off, alpha, signal, norm):
    """Operation ``wstat_reduce`` (numba); see :func:`.reference.wstat_reduce`."""
    n = n_on.shape[0]
    out = np.empty(3)
    partial = np.empty(((n + CHUNK - 1) // CHUNK, 3))
    _KERNELS[n > PARALLEL_THRESHOLD](n_on, n_off, alpha, signal, float(norm), partial, out)
    return float(out[0]), float(out[1]), float(out[2])
