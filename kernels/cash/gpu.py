"""Cash family, CUDA: the element math as device functions, block tree reductions.

Kernels are ``numba.cuda.jit`` kernels launched on CuPy arrays (through the CUDA array
interface), NumPy arrays under numba's CUDA simulator.
"""

import numba
import numpy as np
from numba import cuda

from ..jit import gpu_device, gpu_functions
from ..launch import THREADS, blocks
from . import element
from .prepare import prepare_numpy

__all__ = ["MAX_NORMS", "cash_sum", "cash_reduce", "prepare"]

#: Largest number of simultaneously free norms the GPU reduction supports.
MAX_NORMS = 4
_WIDTH = 1 + MAX_NORMS + MAX_NORMS * MAX_NORMS

_cash_term = gpu_device(element.cash_term)
_add_bin_terms = gpu_functions(element).add_bin_terms


@cuda.jit(device=True)
def _block_sum_into(shared, width, out):
    """Sum ``shared[:, :width]`` over the block's threads; thread 0 adds it to ``out``."""
    tid = cuda.threadIdx.x
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            for j in range(width):
                shared[tid, j] += shared[tid + step, j]
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        for j in range(width):
            cuda.atomic.add(out, j, shared[0, j])


@cuda.jit
def _cash_sum_kernel(counts, mu, out):
    shared = cuda.shared.array((THREADS, 1), numba.float64)
    acc = 0.0
    for i in range(cuda.grid(1), counts.shape[0], cuda.gridsize(1)):
        acc += _cash_term(counts[i], mu[i])
    shared[cuda.threadIdx.x, 0] = acc
    _block_sum_into(shared, 1, out)


@cuda.jit
def _cash_reduce_kernel(counts, fixed, templates, norms, need_stat, out):
    shared = cuda.shared.array((THREADS, _WIDTH), numba.float64)
    tid = cuda.threadIdx.x
    k = templates.shape[0]
    width = 1 + k + k * k
    for j in range(width):
        shared[tid, j] = 0.0
    for i in range(cuda.grid(1), counts.shape[0], cuda.gridsize(1)):
        _add_bin_terms(shared, tid, counts[i], fixed[i], templates, i, norms, need_stat)
    _block_sum_into(shared, width, out)


def prepare(backend, counts, fixed, templates):
    """Operation ``prepare`` (cuda): classify on the host; the counted bins are uploaded."""
    return prepare_numpy(counts, fixed, templates)


def cash_sum(backend, counts, mu):
    """Operation ``cash_sum`` (cuda) of 1-d device arrays."""
    out = backend.xp.zeros(1)
    _cash_sum_kernel[blocks(counts.shape[0]), THREADS](counts, mu, out)
    return 2.0 * float(backend.to_numpy(out)[0])


def cash_reduce(backend, counts, fixed, templates, norms, need_stat):
    """Operation ``cash_reduce`` (cuda); see :func:`.reference.cash_reduce`."""
    k = templates.shape[0]
    if k > MAX_NORMS:
        raise ValueError(f"the cuda backend fits at most {MAX_NORMS} free norms at once, got {k}")
    out = backend.xp.zeros(1 + k + k * k)
    norms_device = backend.asarray(norms)
    _cash_reduce_kernel[blocks(counts.shape[0]), THREADS](
        counts, fixed, templates, norms_device, bool(need_stat), out
    )
    host = 2.0 * backend.to_numpy(out)
    stat = host[0] if need_stat else np.nan
    return stat, host[1 : 1 + k].copy(), host[1 + k :].reshape(k, k).copy()
