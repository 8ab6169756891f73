"""Trials family, numba: the element fit compiled for the CPU, parallel over chunks of
:data:`ROWS_PER_CHUNK` rows (serial below :data:`PARALLEL_ROWS` rows).

The kernel allocates nothing: each chunk gathers its rows' listed bins into its own row
of a scratch array the host allocates, and each row's fit keeps its sums in scalars."""

import numba
import numpy as np

from ..jit import cpu_functions, cpu_kernel
from . import element

__all__ = ["PARALLEL_ROWS", "ROWS_PER_CHUNK", "fit_norm_rows"]

_fit_row = cpu_functions(element).fit_row
#: Rows below which the kernel runs serially (waking the thread pool costs more).
PARALLEL_ROWS = 8
#: Rows of a chunk (one scratch row each; the unit of work of a thread).
ROWS_PER_CHUNK = 32


def _fit_source(counts, fixed, template, settings, listed, out):
    n_rows = counts.shape[0]
    for c in numba.prange(listed.shape[0]):
        for r in range(c * ROWS_PER_CHUNK, min(n_rows, (c + 1) * ROWS_PER_CHUNK)):
            _fit_row(counts, r, fixed, template, settings, listed[c], out)


_FIT = {
    parallel: cpu_kernel(_fit_source, parallel=parallel, error_model="numpy")
    for parallel in (False, True)
}


def fit_norm_rows(backend, counts, fixed, template, settings, out):
    """Operation ``fit_norm_rows`` (numba); see the family's docstring."""
    n_chunks = -(-counts.shape[0] // ROWS_PER_CHUNK)
    listed = np.empty((n_chunks, counts.shape[1]), dtype=np.int64)
    _FIT[counts.shape[0] >= PARALLEL_ROWS](counts, fixed, template, settings, listed, out)
    return out
