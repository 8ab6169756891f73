"""WStat family, CUDA: the element math as device functions, a block tree reduction.

Grid-stride loop, per-thread partial sums in shared memory, one tree reduction per
block and one atomic add per block and output (as :mod:`rtafast_kernels.cash.gpu`).
Launched on CuPy arrays, NumPy arrays under numba's CUDA simulator.
"""

import numba
from numba import cuda

from ..jit import gpu_functions
from ..launch import THREADS, blocks
from . import element

__all__ = ["wstat_reduce"]

_add_bin = gpu_functions(element).wstat_add_bin


@cuda.jit
def _wstat_reduce_kernel(n_on, n_off, alpha, signal, norm, out):
    shared = cuda.shared.array((THREADS, 3), numba.float64)
    tid = cuda.threadIdx.x
    stat = 0.0
    grad = 0.0
    hess = 0.0
    for i in range(cuda.grid(1), n_on.shape[0], cuda.gridsize(1)):
        stat, grad, hess = _add_bin(stat, grad, hess, n_on[i], n_off[i], alpha[i], signal[i], norm)
    shared[tid, 0] = stat
    shared[tid, 1] = grad
    shared[tid, 2] = hess
    cuda.syncthreads()
    step = cuda.blockDim.x // 2
    while step > 0:
        if tid < step:
            for j in range(3):
                shared[tid, j] += shared[tid + step, j]
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        for j in range(3):
            cuda.atomic.add(out, j, shared[0, j])


def wstat_reduce(backend, n_on, n_off, alpha, signal, norm):
    """Operation ``wstat_reduce`` (cuda) of 1-d float64 device arrays; see
    :func:`.reference.wstat_reduce`."""
    out = backend.xp.zeros(3)
    _wstat_reduce_kernel[blocks(n_on.shape[0]), THREADS](
        n_on, n_off, alpha, signal, float(norm), out
    )
    host = 2.0 * backend.to_numpy(out)
    return float(host[0]), float(host[1]), float(host[2])
