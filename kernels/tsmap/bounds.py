"""Confidence bounds of a pixel's norm: ``norm_errn``, ``norm_errp`` and ``norm_ul``.

As gammapy's ``BrentqFluxEstimator``: the norms where the statistic crosses
``stat_best + n_sigma^2`` (``n_sigma_ul^2`` for the upper limit), found by
``find_roots`` with one bin (scipy's brentq on the bracket as it is, no sampling) on
gammapy's brackets ``[norm - 100 norm_err, norm]`` and ``[norm, norm + 100
norm_err]``; NaN where it fails. The end at the norm is not evaluated again (its
statistic is the fit's). Norms are dimensionless; ``lin``, ``pixel``, ``scratch``,
``row`` and ``tables`` are described in :mod:`.statistic`, ``search = (rtol, max_niter)``
are brentq's relative tolerance and most iterations.
"""

import math

from .constants import BRENTQ_RTOL_MIN, BRENTQ_XTOL

__all__ = ["make_confidence_bounds"]


def make_confidence_bounds(compile_function, compile_piece, brentq_step_c, stat_at):
    """Compile the confidence searches of a pixel's norm.

    Parameters
    ----------
    compile_function, compile_piece : callable
        Compilers of ``confidence_bounds`` (inlined into the per-pixel fit on the CPU) and
        of the search it runs (compiled once); see :mod:`.element`.
    brentq_step_c : callable
        :func:`.brentq.brentq_step`, compiled.
    stat_at : callable
        The statistic at a norm (:func:`.statistic.make_statistic_functions`).

    Returns
    -------
    callable
        ``confidence_bounds(norm, stat, norm_err, errors, search, lin, pixel, scratch,
        row, tables)`` -> ``(errn, errp, ul)`` with ``errors = (n_sigma, n_sigma_ul,
        want_errs, want_ul)``: NaN where not wanted or not found.
    """

    def confidence(
        target, start, end, norm_at_start, stat_norm, search, lin, pixel, scratch, row, tables
    ):
        """Root of ``target - stat`` in ``[start, end]`` as gammapy's ``find_roots``.

        ``find_roots`` with one bin runs scipy's brentq (``xtol`` 2e-12) on the bracket
        as it is: NaN when the ends have the same sign, a value is NaN or brentq does
        not converge in ``max_niter`` iterations. One end is the best-fit norm, whose
        statistic ``stat_norm`` is known (the start if ``norm_at_start``, else the
        end): it is not evaluated again.
        """
        rtol, max_niter = search
        if rtol < BRENTQ_RTOL_MIN:
            return math.nan
        xpre = start
        xcur = end
        xblk = 0.0
        fpre = 0.0
        fcur = 0.0
        fblk = 0.0
        spre = 0.0
        scur = 0.0
        # both ends and every iterate through one call site (one inlined copy)
        for k in range(max_niter + 1):
            point = start if k == 0 else xcur
            if (k == 0 and norm_at_start) or (k == 1 and not norm_at_start):
                value = target - stat_norm
            else:
                value = target - stat_at(point, lin, pixel, scratch, row, tables)
            if value != value:
                return math.nan
            if k == 0:
                fpre = value
                continue
            fcur = value
            if k == 1:
                if fpre == 0.0:
                    return start
                if fcur == 0.0:
                    return end
                if (fpre < 0.0) == (fcur < 0.0):
                    return math.nan
            xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, done = brentq_step_c(
                xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, BRENTQ_XTOL, rtol
            )
            if done:
                return xcur
        return math.nan

    confidence_c = compile_piece(confidence)

    def confidence_bounds(norm, stat, norm_err, errors, search, lin, pixel, scratch, row, tables):
        n_sigma, n_sigma_ul, want_errs, want_ul = errors
        errn = math.nan
        errp = math.nan
        ul = math.nan
        # errp, errn and ul through one call site (each call site is one inlined copy)
        for side in range(3):
            if (side < 2 and not want_errs) or (side == 2 and not want_ul):
                continue
            if side == 2:
                target = stat + n_sigma_ul * n_sigma_ul
                start_norm = norm
                end_norm = norm + 1e2 * norm_err
            elif side == 0:
                target = stat + n_sigma * n_sigma
                start_norm = norm
                end_norm = norm + 1e2 * norm_err
            else:
                target = stat + n_sigma * n_sigma
                start_norm = norm - 1e2 * norm_err
                end_norm = norm
            found = confidence_c(
                target,
                start_norm,
                end_norm,
                side != 1,
                stat,
                search,
                lin,
                pixel,
                scratch,
                row,
                tables,
            )
            if side == 0:
                errp = found - norm
            elif side == 1:
                errn = norm - found
            else:
                ul = found
        return errn, errp, ul

    return compile_function(confidence_bounds)
