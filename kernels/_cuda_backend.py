"""GPU backend: the element math compiled as CUDA device functions.

Kernels are ``numba.cuda.jit`` kernels launched on CuPy arrays (through the CUDA
array interface). Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) the
same kernels run on NumPy arrays in Python, with a tiny launch grid: that is how
CI tests the GPU logic without a GPU.

This module imports CuPy and ``numba.cuda``; it is only imported when the cuda
backend is resolved.
"""

import math

import numba
import numpy as np
from numba import cuda

from . import element
from .binning import outcome_from_codes
from .binning_cuda import bin_events_cuda
from .jit import gpu_device
from .prepare import prepare_numpy
from .selection_cuda import select_cuda

__all__ = ["CudaBackend", "MAX_NORMS"]

SIMULATED = bool(numba.config.ENABLE_CUDASIM)

#: Largest number of simultaneously free norms the GPU reduction supports.
MAX_NORMS = 4
_WIDTH = 1 + MAX_NORMS + MAX_NORMS * MAX_NORMS
#: Threads per block (a power of two, for the shared-memory tree reduction).
THREADS = 8 if SIMULATED else 128
MAX_BLOCKS = 2 if SIMULATED else 1024

_cash_term = gpu_device(element.cash_term)
_cash_dmu = gpu_device(element.cash_dmu)
_cash_d2mu = gpu_device(element.cash_d2mu)


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
        mu = fixed[i]
        for a in range(k):
            mu += norms[a] * templates[a, i]
        if need_stat:
            shared[tid, 0] += _cash_term(counts[i], mu)
        w1 = _cash_dmu(counts[i], mu)
        w2 = _cash_d2mu(counts[i], mu)
        for a in range(k):
            sa = templates[a, i]
            shared[tid, 1 + a] += sa * w1
            for b in range(k):
                shared[tid, 1 + k + a * k + b] += sa * templates[b, i] * w2
    _block_sum_into(shared, width, out)


@cuda.jit
def _scatter_add_kernel(cube, codes, weight):
    for i in range(cuda.grid(1), codes.shape[0], cuda.gridsize(1)):
        cuda.atomic.add(cube, codes[i], weight)


def _blocks(n):
    return max(1, min(MAX_BLOCKS, math.ceil(n / THREADS)))


def _grid(n):
    """Launch configuration ``(blocks, threads)`` for ``n`` items (grid-stride kernels)."""
    return _blocks(n), THREADS


class CudaBackend:
    """CUDA implementation of the reductions (CuPy arrays, or NumPy under the simulator)."""

    name = "cuda"
    #: Events per ``bin_events`` call (one int64 code per event on the device).
    bin_chunk_events = 1 << 22

    def __init__(self):
        if SIMULATED:
            self.xp = np
        else:
            import cupy

            self.xp = cupy

    def device_name(self):
        """Return the GPU's name (or say that the simulator is used)."""
        if SIMULATED:
            return "numba CUDA simulator"
        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else device.name
        return f"{name} (compute capability {device.compute_capability})"

    def asarray(self, array):
        """Return ``array`` as a contiguous float64 array on the device."""
        return self.xp.ascontiguousarray(self.xp.asarray(array, dtype=self.xp.float64))

    def to_numpy(self, array):
        """Copy a device array to a host NumPy array."""
        if SIMULATED:
            return np.asarray(array)
        return self.xp.asnumpy(array)

    def synchronize(self):
        """Wait until the GPU finished all queued work."""
        if not SIMULATED:
            self.xp.cuda.get_current_stream().synchronize()

    def prepare(self, counts, fixed, templates):
        """Classify the bins on the host with NumPy; the counted bins are then uploaded."""
        return prepare_numpy(counts, fixed, templates)

    def cash_sum(self, counts, mu):
        """Cash statistic ``2 * sum(mu - n ln mu)`` of 1-d device arrays."""
        out = self.xp.zeros(1)
        _cash_sum_kernel[_blocks(counts.shape[0]), THREADS](counts, mu, out)
        return 2.0 * float(self.to_numpy(out)[0])

    def cash_reduce(self, counts, fixed, templates, norms, need_stat):
        """Cash statistic, gradient and Hessian; see ``NumpyBackend.cash_reduce``."""
        k = templates.shape[0]
        if k > MAX_NORMS:
            raise ValueError(
                f"the cuda backend fits at most {MAX_NORMS} free norms at once, got {k}"
            )
        out = self.xp.zeros(1 + k + k * k)
        norms_device = self.asarray(norms)
        blocks = _blocks(counts.shape[0])
        _cash_reduce_kernel[blocks, THREADS](
            counts, fixed, templates, norms_device, bool(need_stat), out
        )
        host = 2.0 * self.to_numpy(out)
        stat = host[0] if need_stat else np.nan
        return stat, host[1 : 1 + k].copy(), host[1 + k :].reshape(k, k).copy()

    def bin_events(self, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
        """Bin events into ``cube`` on the device; return a ``BinOutcome`` (codes on the device)."""
        codes = bin_events_cuda(self.xp, lon, lat, energy, params, scaled_edges, cube, _grid)
        return outcome_from_codes(self.xp, codes, keep_codes, self.to_numpy)

    def scatter_add(self, cube, codes, weight):
        """``cube[codes] += weight`` with repeated codes accumulated (atomics)."""
        if codes.shape[0]:
            blocks = _blocks(codes.shape[0])
            _scatter_add_kernel[blocks, THREADS](cube, codes, float(weight))

    def select_events(self, time, energy, ra, dec, params, intervals):
        """Selection code of each event: 1 selected, 0 rejected, 2 ambiguous."""
        return select_cuda(self.xp, time, energy, ra, dec, params, intervals, _grid)

    def ts_scan(self, inputs):
        """TS scan of :class:`rtafast_kernels.tsmap_numpy.TSScanInputs` (one thread per pixel).

        Returns a host array ``(N_OUTPUTS, npix)``; see :mod:`rtafast_kernels.tsmap_element`.
        """
        from .tsmap_cuda import ts_scan_cuda

        out = ts_scan_cuda(inputs, self.xp)
        self.synchronize()
        return self.to_numpy(out)
