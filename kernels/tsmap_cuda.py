"""GPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap_element`
compiled as a CUDA device function, one thread per pixel (grid-stride loop).

Each thread of the launch owns one scratch row (``3 x L x ky x kx`` floats) in
global memory; the grid is sized so the scratch stays under
:data:`SCRATCH_BYTES`: memory is O(map size + threads x kernel size). Under
numba's CUDA simulator the same kernel runs on NumPy arrays with a tiny grid.
"""

import math

import numba
import numpy as np
from numba import cuda

from .jit import gpu_device
from .tsmap_element import N_OUTPUTS, make_fit_pixel

__all__ = ["ts_scan_cuda"]

SIMULATED = bool(numba.config.ENABLE_CUDASIM)
#: Threads per block.
THREADS = 8 if SIMULATED else 128
#: Most blocks of one launch.
MAX_BLOCKS = 2 if SIMULATED else 4096
#: Budget of the per-thread scratch rows, in bytes.
SCRATCH_BYTES = 512 * 2**20

_fit_pixel = make_fit_pixel(gpu_device)


@cuda.jit
def _ts_scan_kernel(
    pix_y,
    pix_x,
    counts,
    background,
    expo,
    kidx,
    ktab,
    guess,
    threshold,
    use_threshold,
    n_sigma,
    n_sigma_ul,
    rtol,
    max_niter,
    want_errs,
    want_ul,
    scratch,
    out,
):
    row = cuda.grid(1)
    for j in range(row, pix_y.shape[0], cuda.gridsize(1)):
        _fit_pixel(
            j,
            pix_y[j],
            pix_x[j],
            counts,
            background,
            expo,
            kidx,
            ktab,
            guess[j],
            threshold,
            use_threshold,
            n_sigma,
            n_sigma_ul,
            rtol,
            max_niter,
            want_errs,
            want_ul,
            scratch,
            row,
            out,
        )


def ts_scan_cuda(inputs, xp):
    """Run the TS scan on the GPU (``xp`` is CuPy, or NumPy under the simulator).

    Returns
    -------
    array, shape (N_OUTPUTS, npix)
        On the device; rows in :data:`rtafast_kernels.tsmap_element.OUTPUT_NAMES` order.
    """
    npix = inputs.pix_y.shape[0]
    size = inputs.counts.shape[0] * inputs.ktab.shape[1] * inputs.ktab.shape[2]
    max_threads = max(THREADS, SCRATCH_BYTES // (3 * 8 * size))
    blocks = max(1, min(MAX_BLOCKS, math.ceil(npix / THREADS), max_threads // THREADS))
    scratch = xp.empty((blocks * THREADS, 3, size))
    out = xp.empty((N_OUTPUTS, npix))

    def device(array, dtype=np.float64):
        return xp.ascontiguousarray(xp.asarray(array, dtype=dtype))

    _ts_scan_kernel[blocks, THREADS](
        device(inputs.pix_y, np.int64),
        device(inputs.pix_x, np.int64),
        device(inputs.counts),
        device(inputs.background),
        device(inputs.expo),
        device(inputs.kidx, np.int32),
        device(inputs.ktab),
        device(inputs.guess),
        float(inputs.threshold),
        bool(inputs.use_threshold),
        float(inputs.n_sigma),
        float(inputs.n_sigma_ul),
        float(inputs.rtol),
        int(inputs.max_niter),
        bool(inputs.want_errs),
        bool(inputs.want_ul),
        scratch,
        out,
    )
    return out
