"""GPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap.element`
compiled as CUDA device functions, one thread per pixel (grid-stride loop): the
pixel's linear sums bin by bin (``dense_pixel``), then its fit (``fit_pixel``).

Each thread of the launch owns one scratch row (``4 x L x ky x kx`` floats) in
global memory; the grid is sized so the scratch stays under
:data:`SCRATCH_BYTES`: memory is O(map size + threads x kernel size). Under
numba's CUDA simulator the same kernel runs on NumPy arrays with a tiny grid.
"""

import math

import numpy as np
from numba import cuda

from ..jit import gpu_device
from ..launch import THREADS
from ..launch import TSMAP_MAX_BLOCKS as MAX_BLOCKS
from .element import N_OUTPUTS, make_scan_functions
from .inputs import pixel_inputs, scan_tables

__all__ = ["ts_scan_cuda", "ts_scan"]
#: Budget of the per-thread scratch rows, in bytes.
SCRATCH_BYTES = 512 * 2**20

_dense_bin, _dense_pixel, _fit_pixels = make_scan_functions(gpu_device)


@cuda.jit
def _ts_scan_kernel(
    pix_y,
    pix_x,
    e_lin,
    b_lin,
    r_lin,
    kidx,
    ktab,
    inv_ktab,
    neg_inv_ktab,
    start,
    lcol,
    lk,
    ln,
    lb,
    le,
    lc0,
    lib,
    lrb,
    regular,
    ny_pad,
    nx_pad,
    guess,
    threshold,
    use_threshold,
    n_sigma,
    n_sigma_ul,
    rtol,
    max_niter,
    want_errs,
    want_ul,
    order,
    lin,
    scratch,
    out,
):
    row = cuda.grid(1)
    tables = (e_lin, b_lin, kidx, ktab, inv_ktab, start, lcol, lk, ln, lb, le, lc0, lib, lrb)
    options = (
        regular,
        ny_pad,
        nx_pad,
        threshold,
        use_threshold,
        n_sigma,
        n_sigma_ul,
        rtol,
        max_niter,
        want_errs,
        want_ul,
    )
    for j in range(row, pix_y.shape[0], cuda.gridsize(1)):
        x = pix_x[j]
        sums = _dense_pixel(
            pix_y[j], x, e_lin, b_lin, r_lin, kidx, ktab, inv_ktab, neg_inv_ktab, ny_pad, nx_pad
        )
        lin[row, 0, 0] = sums[0]
        lin[row, 1, 0] = sums[1]
        lin[row, 2, 0] = sums[2]
        lin[row, 3, 0] = sums[3]
        lin[row, 4, 0] = sums[4]
        _fit_pixels(
            j, j + 1, order, pix_y, pix_x, lin, row, x, tables, options, guess, scratch, row, out
        )


def ts_scan_cuda(inputs, xp):
    """Run the TS scan on the GPU (``xp`` is CuPy, or NumPy under the simulator).

    The per-bin tables (:func:`rtafast_kernels.tsmap.inputs.scan_tables`) are
    built on the host and copied.

    Returns
    -------
    array, shape (N_OUTPUTS, npix)
        On the device; rows in :data:`rtafast_kernels.tsmap.element.OUTPUT_NAMES` order.
    """
    npix = inputs.pix_y.shape[0]
    out = xp.empty((N_OUTPUTS, npix))
    if npix == 0:
        return out
    t = scan_tables(inputs)
    size = t.kidx.shape[0] // (t.ny_pad * t.nx_pad) * t.ktab.shape[1] * t.ktab.shape[2]
    max_threads = max(THREADS, SCRATCH_BYTES // (4 * 8 * size))
    blocks = max(1, min(MAX_BLOCKS, math.ceil(npix / THREADS), max_threads // THREADS))
    scratch = xp.empty((blocks * THREADS, 4, size))
    lin = xp.empty((blocks * THREADS, 5, 1))

    def device(array, dtype=np.float64):
        return xp.ascontiguousarray(xp.asarray(array, dtype=dtype))

    _ts_scan_kernel[blocks, THREADS](
        device(inputs.pix_y, np.int64),
        device(inputs.pix_x, np.int64),
        device(t.e_lin),
        device(t.b_lin),
        device(t.r_lin),
        device(t.kidx, np.int32),
        device(t.ktab),
        device(t.inv_ktab),
        device(t.neg_inv_ktab),
        device(t.start, np.int64),
        device(t.lcol, np.int64),
        device(t.lk, np.int32),
        device(t.ln),
        device(t.lb),
        device(t.le),
        device(t.lc0),
        device(t.lib),
        device(t.lrb),
        bool(t.regular),
        int(t.ny_pad),
        int(t.nx_pad),
        device(pixel_inputs(inputs)),
        float(inputs.threshold),
        bool(inputs.use_threshold),
        float(inputs.n_sigma),
        float(inputs.n_sigma_ul),
        float(inputs.rtol),
        int(inputs.max_niter),
        bool(inputs.want_errs),
        bool(inputs.want_ul),
        xp.arange(npix, dtype=np.int64),
        lin,
        scratch,
        out,
    )
    return out


def ts_scan(backend, inputs):
    """Operation ``ts_scan`` (cuda, one thread per pixel): host array ``(N_OUTPUTS, npix)``."""
    out = ts_scan_cuda(inputs, backend.xp)
    backend.synchronize()
    return backend.to_numpy(out)
