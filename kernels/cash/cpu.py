"""Cash family, numba: the element math compiled for the CPU, parallel over chunks.

Reductions are split into chunks of :data:`~rtafast_kernels.launch.CHUNK` bins (a
partition independent of the thread count) so results are reproducible whatever
``NUMBA_NUM_THREADS`` is; below :data:`~rtafast_kernels.launch.PARALLEL_THRESHOLD`
bins the serial compilation of the same source runs.
"""

import numba
import numpy as np

from ..jit import cpu, cpu_kernel
from ..launch import CHUNK, PARALLEL_THRESHOLD
from . import element
from .prepare import prepare_numba

__all__ = ["cash_sum", "cash_reduce", "prepare"]

_cash_term = cpu(element.cash_term)
_cash_dmu = cpu(element.cash_dmu)
_cash_d2mu = cpu(element.cash_d2mu)


def _cash_sum_source(counts, mu):
    n = counts.shape[0]
    nchunks = (n + CHUNK - 1) // CHUNK
    partial = np.zeros(nchunks)
    for c in numba.prange(nchunks):
        acc = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            acc += _cash_term(counts[i], mu[i])
        partial[c] = acc
    return 2.0 * partial.sum()


def _cash_reduce_source(counts, fixed, templates, norms, need_stat, out):
    n = counts.shape[0]
    k = templates.shape[0]
    width = 1 + k + k * k
    nchunks = (n + CHUNK - 1) // CHUNK
    partial = np.zeros((nchunks, width))
    for c in numba.prange(nchunks):
        acc = np.zeros(width)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            mu = fixed[i]
            for a in range(k):
                mu += norms[a] * templates[a, i]
            if need_stat:
                acc[0] += _cash_term(counts[i], mu)
            w1 = _cash_dmu(counts[i], mu)
            w2 = _cash_d2mu(counts[i], mu)
            for a in range(k):
                sa = templates[a, i]
                acc[1 + a] += sa * w1
                for b in range(k):
                    acc[1 + k + a * k + b] += sa * templates[b, i] * w2
        partial[c, :] = acc
    for j in range(width):
        out[j] = 2.0 * partial[:, j].sum()


# One source, two compilations: parallel over chunks, and serial for small inputs.
_cash_sum_parallel = cpu_kernel(_cash_sum_source, parallel=True)
_cash_sum_serial = cpu_kernel(_cash_sum_source)
_cash_reduce_parallel = cpu_kernel(_cash_reduce_source, parallel=True)
_cash_reduce_serial = cpu_kernel(_cash_reduce_source)


def prepare(backend, counts, fixed, templates):
    """Operation ``prepare`` (numba): classify the bins of a Cash problem in parallel."""
    return prepare_numba(counts, fixed, templates)


def cash_sum(backend, counts, mu):
    """Operation ``cash_sum`` (numba); see :func:`.reference.cash_sum`."""
    kernel = _cash_sum_parallel if counts.shape[0] > PARALLEL_THRESHOLD else _cash_sum_serial
    return float(kernel(counts, mu))


def cash_reduce(backend, counts, fixed, templates, norms, need_stat):
    """Operation ``cash_reduce`` (numba); see :func:`.reference.cash_reduce`."""
    k = templates.shape[0]
    out = np.empty(1 + k + k * k)
    big = counts.shape[0] > PARALLEL_THRESHOLD
    kernel = _cash_reduce_parallel if big else _cash_reduce_serial
    kernel(counts, fixed, templates, np.asarray(norms, np.float64), need_stat, out)
    stat = out[0] if need_stat else np.nan
    return stat, out[1 : 1 + k].copy(), out[1 + k :].reshape(k, k).copy()
