"""CPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap.element`
compiled with numba, parallel over image rows (``prange``).

For each image row holding fitted pixels, the linear sums of all its pixels
(:func:`rtafast_kernels.tsmap.footprint.dense_bin`) are accumulated one footprint
offset at a time with the innermost loop running along the row (contiguous,
branch-free: it vectorises); then each pixel of the row is fitted from its
listed bins. Each row allocates its sum rows and one scratch row
(``4 x L x ky x kx`` floats): memory is O(map size + threads x kernel size). The
kernel takes the records of :func:`rtafast_kernels.tsmap.record.pack_scan`.
"""

import numba
import numpy as np

from ..jit import cpu, cpu_kernel, cpu_piece, cpu_reduction
from .constants import N_OUTPUTS, RATIO_INIT
from .element import make_scan_functions
from .record import pack_scan

__all__ = ["ts_scan_numba", "ts_scan"]


_dense_bin, _, _fit_pixels = make_scan_functions(cpu, cpu_reduction, cpu_piece)


@cpu
def _add_linear_bin(sums, kernel, linear):
    """:func:`.footprint.dense_bin` on tuples of scalars: ``sums`` (five), ``kernel =
    (k, inv_k, neg_inv_k)`` and ``linear = (e_lin, b_lin, r_lin)`` of the bin (scalars
    only: arrays handed to an inlined function would be reference-counted per bin)."""
    sum_pos, sum_neg, sum_b, ratio_min, ratio_up = sums
    k, inv_k, neg_inv_k = kernel
    e_lin, b_lin, r_lin = linear
    return _dense_bin(
        sum_pos, sum_neg, sum_b, ratio_min, ratio_up, k, inv_k, neg_inv_k, e_lin, b_lin, r_lin
    )


@cpu
def _row_linear_sums(y, xlo, width, linear, kernels, ny_pad, nx_pad):
    """Linear sums of the pixels ``(y, xlo + t)``, ``t < width``, shape ``(1, 5, width)``.

    One footprint offset at a time, the innermost loop along the row (slices: indices
    known >= 0, no wrap-around branch; with one kernel row per layer the loop vectorises).
    """
    e_lin, b_lin, r_lin, kidx, layer_kid = linear
    ktab, inv_ktab, neg_inv_ktab = kernels
    ky = ktab.shape[1]
    kx = ktab.shape[2]
    lin = np.empty((1, 5, width))
    pos = lin[0, 0]
    neg = lin[0, 1]
    bkg = lin[0, 2]
    ratio = lin[0, 3]
    up = lin[0, 4]
    pos[:] = 0.0
    neg[:] = 0.0
    bkg[:] = 0.0
    ratio[:] = RATIO_INIT
    up[:] = RATIO_INIT
    for layer in range(layer_kid.shape[0]):
        kid = layer_kid[layer]
        for dy in range(ky):
            base = (layer * ny_pad + y + dy) * nx_pad + xlo
            for dx in range(kx):
                first = base + dx
                e_row = e_lin[first : first + width]
                b_row = b_lin[first : first + width]
                r_row = r_lin[first : first + width]
                if kid >= 0:
                    kernel = (ktab[kid, dy, dx], inv_ktab[kid, dy, dx], neg_inv_ktab[kid, dy, dx])
                    for t in range(width):
                        sums = (pos[t], neg[t], bkg[t], ratio[t], up[t])
                        sums = _add_linear_bin(sums, kernel, (e_row[t], b_row[t], r_row[t]))
                        pos[t], neg[t], bkg[t], ratio[t], up[t] = sums
                else:
                    k_row = kidx[first : first + width]
                    for t in range(width):
                        kk = k_row[t]
                        kernel = (ktab[kk, dy, dx], inv_ktab[kk, dy, dx], neg_inv_ktab[kk, dy, dx])
                        sums = (pos[t], neg[t], bkg[t], ratio[t], up[t])
                        sums = _add_linear_bin(sums, kernel, (e_row[t], b_row[t], r_row[t]))
                        pos[t], neg[t], bkg[t], ratio[t], up[t] = sums
    return lin


def _ts_scan_source(arrays, options, rows, out):
    """Fit every pixel of ``arrays`` (:func:`.record.pack_scan`), one image row per task.

    ``rows = (rows_y, row_start, row_xlo, row_xhi, order)`` (:func:`_rows`).
    """
    pixels, linear, kernels, listed = arrays
    pix_y, pix_x, guess, ring_counts = pixels
    e_lin, b_lin, r_lin, kidx, layer_kid = linear
    ktab, inv_ktab, neg_inv_ktab = kernels
    start, lcol, lk, ln, lb, le, lc0, lrb = listed
    rows_y, row_start, row_xlo, row_xhi, order = rows
    ny_pad = options.ny_pad
    nx_pad = options.nx_pad
    size = layer_kid.shape[0] * ktab.shape[1] * ktab.shape[2]
    for r in numba.prange(rows_y.shape[0]):
        # numba's prange takes no tuple of arrays from outside the loop: rebuilt here
        linear_r = (e_lin, b_lin, r_lin, kidx, layer_kid)
        kernels_r = (ktab, inv_ktab, neg_inv_ktab)
        listed_r = (start, lcol, lk, ln, lb, le, lc0, lrb)
        arrays_r = ((pix_y, pix_x, guess, ring_counts), linear_r, kernels_r, listed_r)
        xlo = row_xlo[r]
        width = row_xhi[r] - xlo + 1
        lin = _row_linear_sums(rows_y[r], xlo, width, linear_r, kernels_r, ny_pad, nx_pad)
        scratch = np.empty((1, 4, size))
        first = row_start[r]
        last = row_start[r + 1]
        _fit_pixels(first, last, order, lin, 0, xlo, arrays_r, options, scratch, 0, out)


_ts_scan_parallel = cpu_kernel(_ts_scan_source, parallel=True)
_ts_scan_serial = cpu_kernel(_ts_scan_source)


def _rows(pix_y, pix_x):
    """Pixels grouped by image row: ``(rows_y, row_start, row_xlo, row_xhi, order)``."""
    key = pix_y * (int(pix_x.max()) + 1) + pix_x
    if np.all(key[1:] > key[:-1]):
        order = np.arange(key.size, dtype=np.int64)  # already row-major (np.nonzero)
        ys, xs = pix_y, pix_x
    else:
        order = np.argsort(key, kind="stable").astype(np.int64)
        ys, xs = pix_y[order], pix_x[order]
    first = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    row_start = np.append(first, ys.size).astype(np.int64)
    row_xlo = np.minimum.reduceat(xs, first)
    row_xhi = np.maximum.reduceat(xs, first)
    return ys[first], row_start, row_xlo, row_xhi, order


def ts_scan_numba(inputs, parallel=True):
    """Run the TS scan of :class:`rtafast_kernels.tsmap.inputs.TSScanInputs` on the CPU.

    Returns
    -------
    ndarray, shape (N_OUTPUTS, npix)
        Rows in :data:`rtafast_kernels.tsmap.constants.OUTPUT_NAMES` order.
    """
    npix = np.shape(inputs.pix_y)[0]
    out = np.empty((N_OUTPUTS, npix))
    if npix == 0:
        return out
    arrays, options = pack_scan(inputs)
    rows = _rows(arrays.pixels.pix_y, arrays.pixels.pix_x)
    # the serial compilation (compiled on first use) only on request: one kernel to
    # compile, and waking the threads costs little next to any fit
    kernel = _ts_scan_parallel if parallel else _ts_scan_serial
    kernel(arrays, options, rows, out)
    return out


def ts_scan(backend, inputs):
    """Operation ``ts_scan`` (numba, parallel): host array ``(N_OUTPUTS, npix)``."""
    return ts_scan_numba(inputs)
