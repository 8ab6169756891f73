"""The listed bins of a pixel's footprint, copied into a scratch row (see :mod:`.element`).

Each pixel copies its listed bins (found through the prefix count ``start`` of listed
bins along the rows, see :class:`rtafast_kernels.tsmap.inputs.ScanTables`) into row
``row`` of ``scratch`` (shape ``(rows, 4, L * ky * kx)``: counts ``n``, model counts at
norm 1 ``m``, background counts ``b`` and ``b / m`` of the stored bins): the counted
bins with ``m > 0`` (the only ones the root search visits) at the front, the other bins
with ``m != 0`` at the back, the constant terms summed.

:func:`make_gather_listed` compiles the copy loop twice: for *regular* tables (every
listed bin has ``n > 0`` and ``m >= 0``: fewer tests) and in general. Both return::

    n_front, n_back, const, totals, bracket

``const`` the half statistic of the bins with ``m = 0``, ``totals = (stat0, sum_n,
sum_m, sum_b)`` (half statistic at norm 0 and sums of ``n``, ``m``, ``b``) and
``bracket = (s_counts, s_model, s_m_empty, r_min, c_min, r_total)``: the sums of
gammapy's root bracket (``n`` over ``n > 0``, ``m`` over ``m > 0``, ``m`` over ``m > 0``
and ``n = 0``), the smallest ``b / m`` of a counted bin (a norm) and its counts (1 if
there is none: gammapy's ``c_min``), and the smallest ``b / m`` over ``m > 0``. Counts
and model counts are in counts, ``m`` at norm 1.
"""

from .constants import RATIO_INIT

__all__ = ["make_gather_listed"]


def make_gather_listed(compile_piece):
    """Compile the copy loops of a pixel's listed bins.

    Parameters
    ----------
    compile_piece : callable
        Compiler of the larger pieces (``jit.cpu_piece`` or ``jit.gpu_device``).

    Returns
    -------
    gather_regular, gather_irregular : callable
        ``gather(scratch, row, y, x, listed, kernels, layers, ny_pad, nx_pad)``, with
        ``listed = (start, lcol, lk, ln, lb, le, lc0, lrb)`` and ``kernels = (ktab,
        inv_ktab, neg_inv_ktab)`` (see :mod:`.record`): copies the listed bins of pixel
        ``(y, x)`` and returns the sums described in this module's docstring.
        ``gather_regular`` is for regular tables only.
    """
    return compile_piece(_make_gather(True)), compile_piece(_make_gather(False))


def _make_gather(regular):
    """The copy loop, for regular tables or not (``regular``: a constant of the
    compiled code, whose branches on it the compiler removes)."""

    def gather(scratch, row, y, x, listed, kernels, layers, ny_pad, nx_pad):
        start, lcol, lk, ln, lb, le, lc0, lrb = listed
        ktab, inv_ktab, _ = kernels
        ky = ktab.shape[1]
        kx = ktab.shape[2]
        size = scratch.shape[2]
        n_front = 0
        n_back = 0
        const = 0.0
        stat0 = 0.0
        sum_n = 0.0
        sum_m = 0.0
        sum_b = 0.0
        s_counts = 0.0
        s_model = 0.0
        s_m_empty = 0.0
        r_min = RATIO_INIT
        i_min = -1
        r_total = RATIO_INIT
        for layer in range(layers):
            for dy in range(ky):
                base = (layer * ny_pad + y + dy) * nx_pad + x
                for i in range(start[base], start[base + kx]):
                    dx = lcol[i] - x
                    kid = lk[i]
                    n = ln[i]
                    b = lb[i]
                    m = ktab[kid, dy, dx] * le[i]
                    if not regular and n == 0.0 and b == 0.0 and m == 0.0:
                        continue
                    c0 = lc0[i]
                    sum_n += n
                    sum_m += m
                    sum_b += b
                    stat0 += c0
                    if m > 0.0:
                        s_model += m
                        if regular:  # every listed bin has n > 0 and m >= 0
                            r = lrb[i] * inv_ktab[kid, dy, dx]
                        else:
                            r = b / m
                            if r < r_total:
                                r_total = r
                        if regular or n > 0.0:
                            if not regular:
                                s_counts += n
                            if r < r_min:
                                r_min = r
                                i_min = n_front
                            scratch[row, 0, n_front] = n
                            scratch[row, 1, n_front] = m
                            scratch[row, 2, n_front] = b
                            scratch[row, 3, n_front] = r
                            n_front += 1
                            continue
                        s_m_empty += m
                    elif not regular and n > 0.0:
                        s_counts += n
                    if m == 0.0:
                        const += c0
                    else:
                        n_back += 1
                        scratch[row, 0, size - n_back] = n
                        scratch[row, 1, size - n_back] = m
                        scratch[row, 2, size - n_back] = b
        if regular:
            s_counts = sum_n
            r_total = r_min
        c_min = 1.0
        if i_min >= 0:
            c_min = scratch[row, 0, i_min]
        totals = (stat0, sum_n, sum_m, sum_b)
        return n_front, n_back, const, totals, (s_counts, s_model, s_m_empty, r_min, c_min, r_total)

    return gather
