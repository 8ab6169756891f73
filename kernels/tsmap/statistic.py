"""The Cash statistic of one pixel as a function of its norm, and its root function.

Arguments shared by the compiled functions (see :mod:`.listed`, :mod:`.footprint`):

* ``scratch``, ``row``: the pixel's listed bins are stored in ``scratch[row]``,
  ``n_front`` at the front and ``n_back`` at the back (:mod:`.listed`);
* ``pixel = (y, x, n_front, n_back, const)``, ``const`` the half statistic of the
  pixel's bins with ``m = 0``; ``tables``: the linear bins' tables (:mod:`.footprint`);
* ``lin = (limit, upper, lin_m, lin_b)``: between ``limit`` (the physical limit of the
  norm) and ``upper`` (where a linear bin with ``m < 0`` reaches 0) the linear bins'
  half statistic is ``lin_b + x lin_m``; elsewhere it is summed bin by bin
  (``linear_exact``, see :func:`.footprint.make_linear_exact`).

Norms are dimensionless (the source model's scale), statistics are Cash values
(``2 sum(mu - n ln mu)``, counts).
"""

__all__ = ["make_statistic_functions", "make_cash_root"]


def make_statistic_functions(compile_function, compile_piece, cash_term, linear_exact):
    """Compile the statistic of a pixel at a norm.

    Parameters
    ----------
    compile_function, compile_piece : callable
        Compilers of the element functions (inlined on the CPU) and of the pieces
        compiled once (the loops over the bins); see :mod:`.element`.
    cash_term, linear_exact : callable
        :func:`rtafast_kernels.cash.element.cash_term` and ``linear_exact``
        (:func:`.footprint.make_linear_exact`), compiled.

    Returns
    -------
    stat_at : callable
        ``stat_at(x_norm, lin, pixel, scratch, row, tables)``: the Cash statistic of all
        footprint bins at norm ``x_norm``.
    listed_stat_and_curvature : callable
        ``listed_stat_and_curvature(norm, pixel, scratch, row)``: half the statistic of
        the stored listed bins at the norm (``const`` included, the linear bins not) and
        their curvature ``sum n m^2 / mu^2`` (per norm^2). It takes one array and
        calls no other piece with it: on the CPU its call costs no reference counting.
    """

    def listed_stat(x_norm, pixel, scratch, row):
        """Half statistic over the stored listed bins (``const`` plus front and back)."""
        _, _, n_front, n_back, const = pixel
        size = scratch.shape[2]
        stat = const
        for i in range(n_front):
            stat += cash_term(scratch[row, 0, i], scratch[row, 2, i] + x_norm * scratch[row, 1, i])
        for i in range(size - n_back, size):
            stat += cash_term(scratch[row, 0, i], scratch[row, 2, i] + x_norm * scratch[row, 1, i])
        return stat

    listed_stat_c = compile_piece(listed_stat)

    def stat_at(x_norm, lin, pixel, scratch, row, tables):
        limit, upper, lin_m, lin_b = lin
        stat = listed_stat_c(x_norm, pixel, scratch, row)
        if limit <= x_norm <= upper:
            stat += lin_b + x_norm * lin_m
        else:
            stat += linear_exact(x_norm, pixel, tables)
        return 2.0 * stat

    def add_bin(stat, curvature, n, m, b, norm):
        """Add a bin's half statistic and curvature ``n m^2 / mu^2`` (none where
        ``mu = 0``) at the norm (scalars only: inlined into the loops)."""
        mu = b + norm * m
        stat += cash_term(n, mu)
        if mu != 0.0:
            curvature += m * m * n / (mu * mu)
        return stat, curvature

    add_bin_c = compile_function(add_bin)

    def listed_stat_and_curvature(norm, pixel, scratch, row):
        _, _, n_front, n_back, const = pixel
        size = scratch.shape[2]
        stat = const
        curvature = 0.0
        for i in range(n_front):
            n, m, b = scratch[row, 0, i], scratch[row, 1, i], scratch[row, 2, i]
            stat, curvature = add_bin_c(stat, curvature, n, m, b, norm)
        for i in range(size - n_back, size):
            n, m, b = scratch[row, 0, i], scratch[row, 1, i], scratch[row, 2, i]
            stat, curvature = add_bin_c(stat, curvature, n, m, b, norm)
        return stat, curvature

    return compile_piece(stat_at), compile_piece(listed_stat_and_curvature)


def make_cash_root(compile_sum):
    """Compile gammapy's root function of the norm fit.

    Parameters
    ----------
    compile_sum : callable
        Compiler of the sums over the bins (``jit.cpu_reduction``: the sum in vector
        lanes, ~2x faster, rounding changes only; or ``jit.gpu_device``).

    Returns
    -------
    cash_root : callable
        ``cash_root(x_norm, scratch, row, n_front, s_empty)``: gammapy's
        ``f_cash_root`` / 2, ``sum m (1 - n / (b + x m))`` over the bins with ``m > 0``
        (``m`` where ``n = 0``: ``s_empty`` holds their sum), in counts.
    cash_root_ends : callable
        ``cash_root_ends(x_lo, x_hi, scratch, row, n_front, s_empty)``: ``cash_root`` at
        both ends of the bracket in one pass over the bins.
    """

    def cash_root(x_norm, scratch, row, n_front, s_empty):
        counts = scratch[row, 0, :n_front]
        model = scratch[row, 1, :n_front]
        background = scratch[row, 2, :n_front]
        total = s_empty
        for i in range(n_front):
            m = model[i]
            total += m * (1.0 - counts[i] / (x_norm * m + background[i]))
        return total

    def cash_root_ends(x_lo, x_hi, scratch, row, n_front, s_empty):
        counts = scratch[row, 0, :n_front]
        model = scratch[row, 1, :n_front]
        background = scratch[row, 2, :n_front]
        total_lo = s_empty
        total_hi = s_empty
        for i in range(n_front):
            m = model[i]
            total_lo += m * (1.0 - counts[i] / (x_lo * m + background[i]))
            total_hi += m * (1.0 - counts[i] / (x_hi * m + background[i]))
        return total_lo, total_hi

    return compile_sum(cash_root), compile_sum(cash_root_ends)
