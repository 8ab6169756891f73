"""scipy's brentq, step for step, and the norm fit of one pixel built on it.

:func:`brentq_step` is one iteration of scipy's ``brentq``
(``scipy/optimize/Zeros/brentq.c``); :func:`make_fit_norm` compiles the fit of a
pixel's norm as gammapy's ``BrentqFluxEstimator`` runs it: brentq on gammapy's
``f_cash_root`` / 2 (the factor 2 changes no iterate, see :mod:`.statistic`) over the
bracket ``[c_min / S_m - s_min, S_n / S_m - s_min]`` (``norm_bounds``), ``xtol =
2e-12``, relative tolerance ``rtol``, at most ``max_niter`` iterations; the norm is
``max(root, limit)``. Where gammapy's brentq raises (no sign change over the bracket,
a NaN value, no convergence, ``rtol`` below ``4 eps``) the norm is the physical limit,
``niter = max_niter`` and ``success = 0``, as gammapy's ``except`` clause sets them.
"""

from .constants import BRENTQ_RTOL_MIN, BRENTQ_XTOL

__all__ = ["brentq_step", "make_fit_norm"]


def brentq_step(xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, xtol, rtol):
    """One iteration of scipy's ``brentq`` (``scipy/optimize/Zeros/brentq.c``).

    The state is brentq's: ``xcur`` the latest point (value ``fcur``), ``xpre`` the
    previous one, ``xblk`` the other end of the bracket. Returns the new state and
    ``done``: when ``done``, ``xcur`` is the root (converged: ``fcur == 0`` or half the
    bracket below ``(xtol + rtol |xcur|) / 2``); else ``xcur`` is the next point, whose
    value the caller puts in ``fcur``. A zero denominator (an infinite or NaN trial
    step in C, rejected by the step test) bisects.
    """
    if fpre != 0.0 and fcur != 0.0 and (fpre < 0.0) != (fcur < 0.0):
        xblk = xpre
        fblk = fpre
        spre = xcur - xpre
        scur = spre
    if abs(fblk) < abs(fcur):
        xpre = xcur
        xcur = xblk
        xblk = xpre
        fpre = fcur
        fcur = fblk
        fblk = fpre
    delta = (xtol + rtol * abs(xcur)) / 2.0
    sbis = (xblk - xcur) / 2.0
    if fcur == 0.0 or abs(sbis) < delta:
        return xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, True
    bisect = True
    if abs(spre) > delta and abs(fcur) < abs(fpre):
        stry = 0.0
        if xpre == xblk:
            # interpolate
            den = fcur - fpre
            if den != 0.0:
                stry = -fcur * (xcur - xpre) / den
                bisect = False
        elif xpre != xcur:
            # extrapolate
            dpre = (fpre - fcur) / (xpre - xcur)
            dblk = (fblk - fcur) / (xblk - xcur)
            den = dblk * dpre * (fblk - fpre)
            if den != 0.0:
                stry = -fcur * (fblk * dblk - fpre * dpre) / den
                bisect = False
        if not bisect and 2.0 * abs(stry) < min(abs(spre), 3.0 * abs(sbis) - delta):
            # good short step
            spre = scur
            scur = stry
        else:
            bisect = True
    if bisect:
        spre = sbis
        scur = sbis
    xpre = xcur
    fpre = fcur
    if abs(scur) > delta:
        xcur += scur
    elif sbis > 0.0:
        xcur += delta
    else:
        xcur -= delta
    return xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, False


def make_fit_norm(compile_piece, brentq_step_c, cash_root, cash_root_ends):
    """Compile ``fit_norm``, the norm fit of one pixel.

    Parameters
    ----------
    compile_piece : callable
        Compiler of the larger pieces (``jit.cpu_piece`` or ``jit.gpu_device``).
    brentq_step_c, cash_root, cash_root_ends : callable
        :func:`brentq_step` and the root functions of
        :func:`.statistic.make_cash_root`, compiled.

    Returns
    -------
    callable
        ``fit_norm(sum_n, sum_m, limit, bracket, scratch, row, n_front, search)`` ->
        ``(norm, niter, success)``. ``sum_n``, ``sum_m``: the pixel's sums of counts and
        model counts (when either is <= 0 the norm is the physical limit ``limit``, 0
        iterations, success); ``bracket = (c_min, s_counts, s_model, r_min, s_m_empty)``;
        the ``n_front`` counted bins with ``m > 0`` are stored at the front of
        ``scratch[row]`` (when there are none, ``f > 0``: the statistic increases from the
        limit on and gammapy's brentq finds no sign change); ``search = (rtol,
        max_niter)``. ``niter`` is brentq's iteration count (the two evaluations at the
        ends, done in one pass over the bins, not included) and ``success`` (1.0 or 0.0)
        its converged flag.
    """

    def fit_norm(sum_n, sum_m, limit, bracket, scratch, row, n_front, search):
        rtol, max_niter = search
        if sum_n <= 0.0 or sum_m <= 0.0:
            return limit, 0, 1.0
        if n_front == 0:
            return limit, max_niter, 0.0
        # scipy's brentq on gammapy's bracket (norm_bounds); a sign error, a NaN or no
        # convergence is gammapy's failure
        c_min, s_counts, s_model, r_min, s_empty = bracket
        x_lo = c_min / s_model - r_min
        x_hi = s_counts / s_model - r_min
        fpre, fcur = cash_root_ends(x_lo, x_hi, scratch, row, n_front, s_empty)
        if rtol < BRENTQ_RTOL_MIN or fpre != fpre or fcur != fcur:
            return limit, max_niter, 0.0
        if fpre == 0.0:
            return max(x_lo, limit), 0, 1.0
        if fcur == 0.0:
            return max(x_hi, limit), 0, 1.0
        if (fpre < 0.0) == (fcur < 0.0):
            return limit, max_niter, 0.0
        xpre = x_lo
        xcur = x_hi
        xblk = 0.0
        fblk = 0.0
        spre = 0.0
        scur = 0.0
        for k in range(1, max_niter + 1):
            xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, done = brentq_step_c(
                xpre, xcur, xblk, fpre, fcur, fblk, spre, scur, BRENTQ_XTOL, rtol
            )
            if done:
                return max(xcur, limit), k, 1.0
            fcur = cash_root(xcur, scratch, row, n_front, s_empty)
            if fcur != fcur:
                break
        return limit, max_niter, 0.0

    return compile_piece(fit_norm)
