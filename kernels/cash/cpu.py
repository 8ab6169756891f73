"""Cash family, numba: the element math compiled for the CPU, parallel over chunks.

Reductions are split into chunks of :data:`~rtafast_kernels.launch.CHUNK` bins (a
partition independent of the thread count) so results are reproducible whatever
``NUMBA_NUM_THREADS`` is; below :data:`~rtafast_kernels.launch.PARALLEL_THRESHOLD`
bins the serial compilation of the same source runs.

Each kernel is compiled at its first call, only in the variant the call needs
(serial or parallel; one free norm or several), and kept short to compile: the
per-chunk results go to an array the host allocates and the kernel sums them in
chunk order with a plain loop (no NumPy allocation, slice assignment or ``sum``
inside a kernel: numba compiles each of those as a sizeable function of its own;
the per-chunk ``row[:] = acc`` alone took ~3 s). The one-norm kernel (the flux-only
fit of one source) keeps its sums in scalars: the loop it shares with the WStat family
(:func:`rtafast_kernels.chunk_sums.triple_reduce_source`).
"""

import numba
import numpy as np

from ..chunk_sums import sum_chunks as _sum_chunks
from ..chunk_sums import triple_reduce_source
from ..jit import cpu, cpu_functions, cpu_kernel
from ..launch import CHUNK, PARALLEL_THRESHOLD
from . import element
from .prepare import prepare_numba

__all__ = ["cash_sum", "cash_reduce", "prepare"]

_cash_term = cpu(element.cash_term)
_cash_dmu = cpu(element.cash_dmu)
_cash_d2mu = cpu(element.cash_d2mu)
_add_bin_terms = cpu_functions(element).add_bin_terms


def _cash_sum_source(counts, mu, partial):
    """``2 * sum`` of the Cash terms; ``partial`` (nchunks,) holds each chunk's sum."""
    n = counts.shape[0]
    for c in numba.prange(partial.shape[0]):
        acc = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            acc += _cash_term(counts[i], mu[i])
        partial[c] = acc
    total = 0.0
    for c in range(partial.shape[0]):
        total += partial[c]
    return 2.0 * total


@cpu
def _add_one_norm_bin(stat, grad, hess, counts, fixed, templates, norm, need_stat, i):
    """One free norm: bin ``i``'s half Cash value (if ``need_stat``) and derivatives
    in the norm, added to ``stat``, ``grad``, ``hess``."""
    s = templates[0, i]
    mu = fixed[i]
    mu += norm * s
    if need_stat:
        stat += _cash_term(counts[i], mu)
    grad += s * _cash_dmu(counts[i], mu)
    hess += s * s * _cash_d2mu(counts[i], mu)
    return stat, grad, hess


#: One free norm, ``(counts, fixed, templates, norm, need_stat, partial, out)``:
#: ``out = 2 * (stat, grad, hess)``; ``partial`` (nchunks, 3) per chunk.
_cash_reduce_one_source = triple_reduce_source("cash_reduce_one", _add_one_norm_bin)


def _cash_reduce_source(counts, fixed, templates, norms, need_stat, partial, out):
    """K free norms: ``out = 2 * (stat, grad, hess.ravel())``; ``partial`` zeroed, per chunk."""
    n = counts.shape[0]
    for c in numba.prange(partial.shape[0]):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            _add_bin_terms(partial, c, counts[i], fixed[i], templates, i, norms, need_stat)
    _sum_chunks(partial, out)


# One source, two compilations each (parallel over chunks; serial for small inputs),
# compiled at the first call that needs it.
_KERNELS = {
    (source.__name__, parallel): cpu_kernel(source, parallel=parallel)
    for source in (_cash_sum_source, _cash_reduce_one_source, _cash_reduce_source)
    for parallel in (False, True)
}


def _kernel(source, n):
    return _KERNELS[source.__name__, n > PARALLEL_THRESHOLD]


def _chunks(n):
    return (n + CHUNK - 1) // CHUNK


def prepare(backend, counts, fixed, templates):
    """Operation ``prepare`` (numba): classify the bins of a Cash problem in parallel."""
    return prepare_numba(counts, fixed, templates)


def cash_sum(backend, counts, mu):
    """Operation ``cash_sum`` (numba); see :func:`.reference.cash_sum`."""
    n = counts.shape[0]
    return float(_kernel(_cash_sum_source, n)(counts, mu, np.empty(_chunks(n))))


def cash_reduce(backend, counts, fixed, templates, norms, need_stat):
    """Operation ``cash_reduce`` (numba); see :func:`.reference.cash_reduce`."""
    n, k = counts.shape[0], templates.shape[0]
    norms = np.asarray(norms, np.float64)
    out = np.empty(1 + k + k * k)
    if k == 1:
        kernel = _kernel(_cash_reduce_one_source, n)
        kernel(counts, fixed, templates, float(norms[0]), need_stat, np.empty((_chunks(n), 3)), out)
    else:
        kernel = _kernel(_cash_reduce_source, n)
        kernel(counts, fixed, templates, norms, need_stat, np.zeros((_chunks(n), out.size)), out)
    stat = out[0] if need_stat else np.nan
    return stat, out[1 : 1 + k].copy(), out[1 + k :].reshape(k, k).copy()
