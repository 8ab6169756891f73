"""Sums over the linear bins of a pixel's footprint (see :mod:`.element`).

A linear bin (``n = 0``, see :class:`rtafast_kernels.tsmap.inputs.ScanTables`) enters the
fit only through five sums (:func:`dense_bin`) as long as the norm stays between the
physical limit and the norm where a bin with ``m < 0`` reaches ``b + x m = 0``; outside
that range :func:`make_linear_exact`'s function sums the linear bins bin by bin.

Arguments shared by the compiled functions (tuples, see :mod:`.record`):

* ``linear = (e_lin, b_lin, r_lin, kidx, layer_kid)`` and ``kernels = (ktab, inv_ktab,
  neg_inv_ktab)``: :class:`rtafast_kernels.tsmap.record.LinearBins` and
  :class:`rtafast_kernels.tsmap.record.KernelTable`;
* ``pixel = (y, x, n_front, n_back, const)``: the pixel (its footprint is ``[y, y + ky)
  x [x, x + kx)`` of the padded layers) and the counts of its stored listed bins (see
  :mod:`.statistic`);
* ``tables = (e_lin, b_lin, kidx, ktab, ny_pad, nx_pad)``: the linear bins' tables.

The compiled kernels build the tuples holding arrays once per call, never per pixel: on
the CPU each tuple of arrays built, unpacked or handed to an inlined function costs
reference counting.
"""

from .constants import RATIO_INIT

__all__ = ["dense_bin", "make_dense_pixel", "make_linear_exact"]


def dense_bin(
    sum_pos, sum_neg, sum_b, ratio_min, ratio_up, k, inv_k, neg_inv_k, e_lin, b_lin, r_lin
):
    """Add one linear bin of a footprint to the pixel's linear sums.

    Parameters
    ----------
    sum_pos, sum_neg : float
        Sums of the model counts at norm 1, ``m = k * e_lin``, of the bins with
        ``k > 0`` and with ``k <= 0`` (counts).
    sum_b : float
        Sum of the background counts.
    ratio_min, ratio_up : float
        Minima of ``b / m`` over ``m > 0`` and of ``b / |m|`` over ``m < 0`` (norms,
        where ``b + x m`` reaches 0). A NaN ratio (``0 * inf``: no model) is never a
        minimum.
    k, inv_k, neg_inv_k : float
        Kernel value at the bin's offset, ``1 / k`` where ``k > 0`` (else ``inf``) and
        ``-1 / k`` where ``k < 0`` (else ``inf``).
    e_lin, b_lin, r_lin : float
        The bin's exposure factor and background counts (0 for listed bins) and
        ``b / e`` (``inf`` where ``e <= 0`` or the bin is listed).

    Returns
    -------
    tuple of float
        ``(sum_pos, sum_neg, sum_b, ratio_min, ratio_up)`` with the bin added.
    """
    m = k * e_lin
    if k > 0.0:
        sum_pos += m
    else:
        sum_neg += m
    sum_b += b_lin
    ratio = r_lin * inv_k
    if ratio < ratio_min:
        ratio_min = ratio
    up = r_lin * neg_inv_k
    if up < ratio_up:
        ratio_up = up
    return sum_pos, sum_neg, sum_b, ratio_min, ratio_up


def make_dense_pixel(compile_function, dense_bin_c):
    """Compile ``dense_pixel``, the linear sums of one pixel bin by bin.

    Parameters
    ----------
    compile_function : callable
        Compiler of element functions (``jit.cpu`` or ``jit.gpu_device``).
    dense_bin_c : callable
        :func:`dense_bin`, compiled.

    Returns
    -------
    callable
        ``dense_pixel(y, x, linear, kernels, ny_pad, nx_pad)``: the five sums of
        :func:`dense_bin` over the footprint of pixel ``(y, x)``.
    """

    def dense_pixel(y, x, linear, kernels, ny_pad, nx_pad):
        e_lin, b_lin, r_lin, kidx, layer_kid = linear
        ktab, inv_ktab, neg_inv_ktab = kernels
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        sum_pos = 0.0
        sum_neg = 0.0
        sum_b = 0.0
        ratio_min = RATIO_INIT
        ratio_up = RATIO_INIT
        for layer in range(layer_kid.shape[0]):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for dx in range(kx):
                    p = base + dx
                    kid = kidx[p]
                    sum_pos, sum_neg, sum_b, ratio_min, ratio_up = dense_bin_c(
                        sum_pos,
                        sum_neg,
                        sum_b,
                        ratio_min,
                        ratio_up,
                        ktab[kid, dy, dx],
                        inv_ktab[kid, dy, dx],
                        neg_inv_ktab[kid, dy, dx],
                        e_lin[p],
                        b_lin[p],
                        r_lin[p],
                    )
        return sum_pos, sum_neg, sum_b, ratio_min, ratio_up

    return compile_function(dense_pixel)


def make_linear_exact(compile_piece, cash_term):
    """Compile ``linear_exact``, the linear bins' statistic summed bin by bin.

    Parameters
    ----------
    compile_piece : callable
        Compiler of the larger pieces (``jit.cpu_piece`` or ``jit.gpu_device``).
    cash_term : callable
        :func:`rtafast_kernels.cash.element.cash_term`, compiled.

    Returns
    -------
    callable
        ``linear_exact(x_norm, pixel, tables)``: half the Cash statistic of the linear
        bins of the pixel's footprint at norm ``x_norm``, with gammapy's truncation (bins
        with ``b = m = 0`` dropped).
    """

    def linear_exact(x_norm, pixel, tables):
        y, x, _, _, _ = pixel
        e_lin, b_lin, kidx, ktab, ny_pad, nx_pad = tables
        layers = kidx.shape[0] // (ny_pad * nx_pad)
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        value = 0.0
        for layer in range(layers):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for dx in range(kx):
                    p = base + dx
                    m = ktab[kidx[p], dy, dx] * e_lin[p]
                    b = b_lin[p]
                    if b == 0.0 and m == 0.0:
                        continue
                    value += cash_term(0.0, b + x_norm * m)
        return value

    return compile_piece(linear_exact)
