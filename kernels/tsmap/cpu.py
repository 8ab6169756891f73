"""CPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap.element`
compiled with numba, parallel over image rows (``prange``).

For each image row holding fitted pixels, the linear sums of all its pixels
(:func:`rtafast_kernels.tsmap.element.dense_bin`) are accumulated one footprint
offset at a time with the innermost loop running along the row (contiguous,
branch-free: it vectorises); then each pixel of the row is fitted from its
listed bins. Each row allocates its sum rows and one scratch row
(``4 x L x ky x kx`` floats): memory is O(map size + threads x kernel size).
"""

import numba
import numpy as np

from ..jit import cpu, cpu_kernel, cpu_piece, cpu_reduction
from .element import N_OUTPUTS, RATIO_INIT, make_scan_functions
from .inputs import pixel_inputs, scan_tables

__all__ = ["ts_scan_numba", "ts_scan"]


_dense_bin, _dense_pixel, _fit_pixels = make_scan_functions(cpu, cpu_reduction, cpu_piece)


def _ts_scan_source(
    pix_y,
    rows_y,
    row_start,
    row_xlo,
    row_xhi,
    order,
    pix_x,
    e_lin,
    b_lin,
    r_lin,
    kidx,
    layer_kid,
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
    out,
):
    layers = layer_kid.shape[0]
    ky = ktab.shape[1]
    kx = ktab.shape[2]
    size = layers * ky * kx
    for r in numba.prange(rows_y.shape[0]):
        y = rows_y[r]
        xlo = row_xlo[r]
        width = row_xhi[r] - xlo + 1
        lin = np.empty((1, 5, width))
        lin_pos = lin[0, 0]
        lin_neg = lin[0, 1]
        lin_b = lin[0, 2]
        lin_r = lin[0, 3]
        lin_u = lin[0, 4]
        lin_pos[:] = 0.0
        lin_neg[:] = 0.0
        lin_b[:] = 0.0
        lin_r[:] = RATIO_INIT
        lin_u[:] = RATIO_INIT
        for layer in range(layers):
            kid = layer_kid[layer]
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + xlo
                for dx in range(kx):
                    # slices: indices known >= 0, no wrap-around branch, the loop vectorises
                    first = base + dx
                    e_row = e_lin[first : first + width]
                    b_row = b_lin[first : first + width]
                    r_row = r_lin[first : first + width]
                    if kid >= 0:
                        k = ktab[kid, dy, dx]
                        inv_k = inv_ktab[kid, dy, dx]
                        neg_inv_k = neg_inv_ktab[kid, dy, dx]
                        for t in range(width):
                            sp, sn, sb, sr, su = _dense_bin(
                                lin_pos[t],
                                lin_neg[t],
                                lin_b[t],
                                lin_r[t],
                                lin_u[t],
                                k,
                                inv_k,
                                neg_inv_k,
                                e_row[t],
                                b_row[t],
                                r_row[t],
                            )
                            lin_pos[t] = sp
                            lin_neg[t] = sn
                            lin_b[t] = sb
                            lin_r[t] = sr
                            lin_u[t] = su
                    else:
                        k_row = kidx[first : first + width]
                        for t in range(width):
                            kk = k_row[t]
                            sp, sn, sb, sr, su = _dense_bin(
                                lin_pos[t],
                                lin_neg[t],
                                lin_b[t],
                                lin_r[t],
                                lin_u[t],
                                ktab[kk, dy, dx],
                                inv_ktab[kk, dy, dx],
                                neg_inv_ktab[kk, dy, dx],
                                e_row[t],
                                b_row[t],
                                r_row[t],
                            )
                            lin_pos[t] = sp
                            lin_neg[t] = sn
                            lin_b[t] = sb
                            lin_r[t] = sr
                            lin_u[t] = su
        scratch = np.empty((1, 4, size))
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
        _fit_pixels(
            row_start[r],
            row_start[r + 1],
            order,
            pix_y,
            pix_x,
            lin,
            0,
            xlo,
            tables,
            options,
            guess,
            scratch,
            0,
            out,
        )


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
        Rows in :data:`rtafast_kernels.tsmap.element.OUTPUT_NAMES` order.
    """
    pix_y = np.asarray(inputs.pix_y, dtype=np.int64)
    pix_x = np.asarray(inputs.pix_x, dtype=np.int64)
    npix = pix_y.shape[0]
    out = np.empty((N_OUTPUTS, npix))
    if npix == 0:
        return out
    t = scan_tables(inputs)
    rows_y, row_start, row_xlo, row_xhi, order = _rows(pix_y, pix_x)
    # the serial compilation (compiled on first use) only on request: one kernel to
    # compile, and waking the threads costs little next to any fit
    kernel = _ts_scan_parallel if parallel else _ts_scan_serial
    kernel(
        pix_y,
        rows_y,
        row_start,
        row_xlo,
        row_xhi,
        order,
        pix_x,
        t.e_lin,
        t.b_lin,
        t.r_lin,
        t.kidx,
        t.layer_kid,
        t.ktab,
        t.inv_ktab,
        t.neg_inv_ktab,
        t.start,
        t.lcol,
        t.lk,
        t.ln,
        t.lb,
        t.le,
        t.lc0,
        t.lib,
        t.lrb,
        bool(t.regular),
        int(t.ny_pad),
        int(t.nx_pad),
        pixel_inputs(inputs),
        float(inputs.threshold),
        bool(inputs.use_threshold),
        float(inputs.n_sigma),
        float(inputs.n_sigma_ul),
        float(inputs.rtol),
        int(inputs.max_niter),
        bool(inputs.want_errs),
        bool(inputs.want_ul),
        out,
    )
    return out


def ts_scan(backend, inputs):
    """Operation ``ts_scan`` (numba, parallel): host array ``(N_OUTPUTS, npix)``."""
    return ts_scan_numba(inputs)
