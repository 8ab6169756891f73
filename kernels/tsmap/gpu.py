"""GPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap.element`
compiled as CUDA device functions, one thread per pixel (grid-stride loop): the
pixel's linear sums bin by bin (``dense_pixel``), then its fit (``fit_pixels``); the
arguments are the records of :func:`rtafast_kernels.tsmap.record.pack_scan`.

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
from .constants import N_OUTPUTS
from .element import make_scan_functions
from .inputs import scan_tables
from .record import pack_scan

__all__ = ["ts_scan_cuda", "ts_scan"]
#: Budget of the per-thread scratch rows, in bytes.
SCRATCH_BYTES = 512 * 2**20

_, _dense_pixel, _fit_pixels = make_scan_functions(gpu_device)


@cuda.jit
def _ts_scan_kernel(arrays, options, order, lin, scratch, out):
    """Fit pixel ``j`` in thread ``j`` (grid-stride); ``arrays``, ``options`` from
    :func:`.record.pack_scan`, ``lin`` (rows, 5, 1) and ``scratch`` one row a thread."""
    row = cuda.grid(1)
    pixels, linear, kernels, _ = arrays
    pix_y, pix_x, _, _ = pixels
    # ScanOptions.ny_pad and .nx_pad, by position (the PTX test types plain tuples)
    ny_pad = options[1]
    nx_pad = options[2]
    for j in range(row, pix_y.shape[0], cuda.gridsize(1)):
        x = pix_x[j]
        sums = _dense_pixel(pix_y[j], x, linear, kernels, ny_pad, nx_pad)
        lin[row, 0, 0] = sums[0]
        lin[row, 1, 0] = sums[1]
        lin[row, 2, 0] = sums[2]
        lin[row, 3, 0] = sums[3]
        lin[row, 4, 0] = sums[4]
        _fit_pixels(j, j + 1, order, lin, row, x, arrays, options, scratch, row, out)


def ts_scan_cuda(inputs, xp):
    """Run the TS scan on the GPU (``xp`` is CuPy, or NumPy under the simulator).

    The per-bin tables (:func:`rtafast_kernels.tsmap.inputs.scan_tables`) are
    built on the host and copied.

    Returns
    -------
    array, shape (N_OUTPUTS, npix)
        On the device; rows in :data:`rtafast_kernels.tsmap.constants.OUTPUT_NAMES` order.
    """
    npix = inputs.pix_y.shape[0]
    out = xp.empty((N_OUTPUTS, npix))
    if npix == 0:
        return out

    def device(array, dtype):
        return xp.ascontiguousarray(xp.asarray(array, dtype=dtype))

    tables = scan_tables(inputs)
    arrays, options = pack_scan(inputs, tables, device)
    size = tables.layer_kid.shape[0] * tables.ktab.shape[1] * tables.ktab.shape[2]
    max_threads = max(THREADS, SCRATCH_BYTES // (4 * 8 * size))
    blocks = max(1, min(MAX_BLOCKS, math.ceil(npix / THREADS), max_threads // THREADS))
    scratch = xp.empty((blocks * THREADS, 4, size))
    lin = xp.empty((blocks * THREADS, 5, 1))
    order = xp.arange(npix, dtype=np.int64)
    _ts_scan_kernel[blocks, THREADS](arrays, options, order, lin, scratch, out)
    return out


def ts_scan(backend, inputs):
    """Operation ``ts_scan`` (cuda, one thread per pixel): host array ``(N_OUTPUTS, npix)``."""
    out = ts_scan_cuda(inputs, backend.xp)
    backend.synchronize()
    return backend.to_numpy(out)
