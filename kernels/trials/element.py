"""Element math of the trials family: the one-norm Cash fit of one row, written once.

Scalar loops using only :mod:`math`: the same source compiles with ``numba.njit`` for
the CPU and as CUDA device functions (:mod:`rtafast_kernels.jit`);
:mod:`rtafast_kernels.trials.reference` is the NumPy twin, vectorised over rows.

Row ``r`` of ``counts`` (``(n_rows, n_bins)``) is fitted with the predicted counts
``mu_i = b_i + x s_i`` (``fixed`` ``b`` and ``template`` ``s``, ``(n_bins,)``, shared by
every row; ``x`` the dimensionless norm). The statistic is gammapy's Cash with
truncation, ``2 sum_i (mu_i - n_i ln mu_i)`` with ``mu`` raised to ``TRUNCATION_VALUE``
and the log only where ``n > 0`` (:mod:`rtafast_kernels.cash.element`: the per-bin terms
``cash_term``, ``cash_dmu``, ``cash_d2mu`` are written out in the loops below, where a bin
whose prediction is truncated contributes no derivative).

Bins (as :class:`rtafast_kernels.CashProblem` splits them): a row's *listed* bins have
counts under the template (``s != 0``, ``n > 0``); its gather pass writes their indices
into a scratch row ``listed`` (``(n_bins,)`` integers) and the iterations visit only
them. The *empty* bins (``s != 0``, ``n = 0``) add ``mu`` to the statistic, linear in the
norm, so only their template sum is kept, as long as every empty bin's prediction stays
above the truncation value; :func:`empty_bins_linear` proves that from ``x - lower``
(``mu >= s (x - lower)``) and the smallest positive template value, allowing for
rounding; otherwise (a norm at or next to ``lower``) they are summed bin by bin. Bins with
``s = 0`` do not depend on the norm and cancel in the TS.

The fit is :func:`rtafast_kernels.fit_norm`'s (``_newton_norm``, no extra bounds), step
for step: no counts where the template is non-zero puts the norm at the physical limit
``lower = -min(b/s)`` over ``s > 0`` (0 iterations); otherwise Newton on the derivative
of the statistic from the excess estimate ``(sum n - sum b) / sum s`` (sums over the bins
with ``s != 0``), the bracket ``[lo, hi]`` kept from the derivative's signs, one test of
the limit itself when a step would cross it, bisection when a step leaves the bracket,
stop when ``|step| <= rtol * sigma`` with ``sigma = sqrt(2 / hess)``. Then, at the best
norm, ``TS = stat(0) - stat(best)`` (summed bin by bin as ``n ln(mu / b) - x s``, no
cancellation between two large statistics) and ``norm_err = sqrt(2 / hess)``.
"""

import math

from ..cash.element import LOG_TRUNCATION_VALUE, TRUNCATION_VALUE

__all__ = [
    "CONVERGED",
    "EPSILON",
    "FIXED_SUM",
    "LOWER",
    "MAX_ITER",
    "NITER",
    "NORM",
    "NORM_ERR",
    "N_OUTPUTS",
    "RTOL",
    "TEMPLATE_MIN",
    "TEMPLATE_SUM",
    "TS",
    "cash_term",
    "empty_bins_linear",
    "fit_row",
    "gather_row",
    "newton_row",
    "row_gradient",
    "row_ts_hess",
]

#: Columns of the output rows: best norm, TS, norm error, Newton iterations, converged
#: (1.0 or 0.0).
NORM, TS, NORM_ERR, NITER, CONVERGED = range(5)
#: Number of output columns.
N_OUTPUTS = 5
#: Fields of the fit's ``settings`` tuple (float64, the same for every row): the norm's
#: physical limit ``-min(b/s)`` over ``s > 0``; ``b`` and ``s`` summed over the bins with
#: ``s != 0``; the smallest positive ``s``; Newton's relative tolerance; most iterations.
LOWER, FIXED_SUM, TEMPLATE_SUM, TEMPLATE_MIN, RTOL, MAX_ITER = range(6)
#: Spacing of float64 numbers at 1 (``2**-52``).
EPSILON = 2.220446049250313e-16


def cash_term(n, mu):
    """Half the Cash statistic of one bin, ``mu - n ln mu``, with truncation.

    The formula of :func:`rtafast_kernels.cash.element.cash_term` (an element module
    compiles only its own functions, so the few lines are repeated here).
    """
    if mu <= TRUNCATION_VALUE:
        if n > 0.0:
            return TRUNCATION_VALUE - n * LOG_TRUNCATION_VALUE
        return TRUNCATION_VALUE
    if n > 0.0:
        return mu - n * math.log(mu)
    return mu


def gather_row(counts, r, template, listed):
    """Write the listed bins of row ``r`` (``s != 0``, ``n > 0``) to ``listed``.

    Returns
    -------
    n_listed : int
        Number of listed bins (their indices are ``listed[:n_listed]``).
    counts_sum : float
        Counts of the row summed over the bins with ``s != 0``.
    empty_sum : float
        Template summed over the empty bins (``s != 0``, ``n = 0``).
    """
    n_listed = 0
    counts_sum = 0.0
    empty_sum = 0.0
    for i in range(template.shape[0]):
        s = template[i]
        if s != 0.0:
            # no branch on the counts (whether a bin has counts is unpredictable; a
            # branch costs 4x): the index is always written, kept by advancing the count
            n = counts[r, i]
            listed[n_listed] = i
            n_listed += n > 0.0
            counts_sum += n
            empty_sum += s * (n <= 0.0)
    return n_listed, counts_sum, empty_sum


def empty_bins_linear(x, lower, template_min):
    """True when ``b + x s`` computes above ``TRUNCATION_VALUE`` in every bin with ``s > 0``.

    ``b + x s >= s (x - lower) >= template_min (x - lower)``; the margins cover the
    rounding of ``x s`` and of the sum (at most ``EPSILON |x| s`` and a relative
    ``EPSILON``).
    """
    return (x - lower - 4.0 * EPSILON * abs(x)) * template_min > 2.0 * TRUNCATION_VALUE


def row_gradient(counts, r, fixed, template, listed, n_listed, empty_sum, x, lower, template_min):
    """Half the first and second derivatives of row ``r``'s statistic at norm ``x``.

    ``sum_i s_i (1 - n_i / mu_i)`` and ``sum_i s_i^2 n_i / mu_i^2`` over the bins whose
    prediction ``mu_i = b_i + x s_i`` exceeds ``TRUNCATION_VALUE`` (the others are flat).
    """
    grad = 0.0
    hess = 0.0
    for j in range(n_listed):
        i = listed[j]
        s = template[i]
        mu = fixed[i] + x * s
        if mu > TRUNCATION_VALUE:
            inverse = 1.0 / mu
            ratio = counts[r, i] * inverse
            grad += s * (1.0 - ratio)
            hess += s * s * ratio * inverse
    if empty_bins_linear(x, lower, template_min):
        grad += empty_sum
    else:  # every bin (those with s = 0 add 0), without branches
        for i in range(template.shape[0]):
            s = template[i]
            grad += s * ((counts[r, i] <= 0.0) & (fixed[i] + x * s > TRUNCATION_VALUE))
    return grad, hess


def row_ts_hess(counts, r, fixed, template, listed, n_listed, empty_sum, x, lower, template_min):
    """``stat(0) - stat(x)`` and the second derivative of the statistic at ``x``.

    A listed bin whose predictions at 0 and at ``x`` are both above the truncation value
    adds ``n ln(mu / b) - x s`` (half), an empty one ``-x s``; the others the
    difference of the truncated terms.
    """
    ts = 0.0
    hess = 0.0
    for j in range(n_listed):
        i = listed[j]
        s = template[i]
        b = fixed[i]
        n = counts[r, i]
        shift = x * s
        mu = b + shift
        if mu > TRUNCATION_VALUE:
            inverse = 1.0 / mu
            hess += s * s * n * inverse * inverse
            if b > TRUNCATION_VALUE:
                ts += n * math.log(mu / b) - shift  # log, not log1p: 3x faster
                continue
        ts += cash_term(n, b) - cash_term(n, mu)
    if empty_bins_linear(x, lower, template_min) and empty_bins_linear(0.0, lower, template_min):
        ts -= x * empty_sum
    else:
        for i in range(template.shape[0]):
            s = template[i]
            if s != 0.0 and not counts[r, i] > 0.0:
                ts += cash_term(0.0, fixed[i]) - cash_term(0.0, fixed[i] + x * s)
    return 2.0 * ts, 2.0 * hess


def newton_row(counts, r, fixed, template, listed, n_listed, empty_sum, counts_sum, settings):
    """Safeguarded Newton search of row ``r``'s best norm above ``lower`` (``counts_sum > 0``).

    ``settings``: the fit's settings (:func:`fit_row`), read here for ``lower``, the
    sums, the tolerance and the most iterations.

    Returns
    -------
    best : float
        The best norm.
    niter : int
        Newton iterations (derivative passes, not counting the one test of ``lower``).
    converged : bool
        False when ``max_iter`` iterations did not reach the tolerance.
    """
    # The derivative of the statistic is increasing and concave in the norm: Newton from
    # the left of the root never overshoots it, from the right it lands on the left.
    lower = settings[LOWER]
    template_sum = settings[TEMPLATE_SUM]
    template_min = settings[TEMPLATE_MIN]
    rtol = settings[RTOL]
    max_iter = int(settings[MAX_ITER])
    x = (counts_sum - settings[FIXED_SUM]) / template_sum
    if x <= lower:
        x = 0.5 * lower if lower < 0.0 else counts_sum / template_sum
    lo = lower
    hi = math.inf
    checked = False
    for niter in range(1, max_iter + 1):
        grad, hess = row_gradient(
            counts, r, fixed, template, listed, n_listed, empty_sum, x, lower, template_min
        )
        if grad > 0.0:
            hi = x
        elif grad < 0.0:
            lo = x
        else:
            return x, niter, True
        if hess > 0.0:
            step = grad / hess
            sigma = math.sqrt(1.0 / hess)  # sqrt(2 / H), H = 2 hess the statistic's
        else:
            step = math.nan
            sigma = math.inf
        if abs(step) <= rtol * sigma:
            return min(max(x - step, lo), hi), niter, True
        new = x - step
        if new <= lo and lo == lower and not checked:
            # The minimum may sit on -min(b/s) itself (the bin reaching mu = 0 has no
            # counts, so the derivative stays finite there): test it once.
            checked = True
            if math.isfinite(lower):
                grad_lower, _ = row_gradient(
                    counts,
                    r,
                    fixed,
                    template,
                    listed,
                    n_listed,
                    empty_sum,
                    lower,
                    lower,
                    template_min,
                )
                if grad_lower >= 0.0:
                    return lower, niter, True
        if not lo < new < hi:  # bisect (towards -min(b/s) if unbounded above)
            new = 0.5 * (lo + hi) if math.isfinite(hi) else 0.5 * (lo + x)
            if not math.isfinite(new):
                new = 2.0 * abs(x) + 1.0
        x = new
    return x, max_iter, False


def fit_row(counts, r, fixed, template, settings, listed, out):
    """Fit row ``r`` of ``counts``; write its results into ``out[r]`` (see the columns).

    Parameters
    ----------
    counts : array, shape (n_rows, n_bins)
        Observed counts of every row (``>= 0``).
    r : int
        The row fitted.
    fixed, template : array, shape (n_bins,)
        Background counts ``b`` and template counts at norm 1 ``s`` (``s >= 0``).
    settings : tuple of 6 floats
        Indexed by :data:`LOWER`, :data:`FIXED_SUM`, :data:`TEMPLATE_SUM`,
        :data:`TEMPLATE_MIN`, :data:`RTOL` (Newton stops when its step is below ``rtol``
        times the norm's error), :data:`MAX_ITER` (most Newton iterations).
    listed : array of int, shape (n_bins,)
        Scratch for the row's listed bins.
    out : array, shape (n_rows, N_OUTPUTS)
        Results: norm, TS, norm error (``inf`` without curvature), iterations, converged.
    """
    lower = settings[LOWER]
    template_min = settings[TEMPLATE_MIN]
    n_listed, counts_sum, empty_sum = gather_row(counts, r, template, listed)
    if counts_sum == 0.0:  # the statistic increases with the norm: the physical limit
        best = lower
        niter = 0
        converged = True
    else:
        best, niter, converged = newton_row(
            counts, r, fixed, template, listed, n_listed, empty_sum, counts_sum, settings
        )
    ts, hess = row_ts_hess(
        counts, r, fixed, template, listed, n_listed, empty_sum, best, lower, template_min
    )
    out[r, NORM] = best
    out[r, TS] = ts
    out[r, NORM_ERR] = math.sqrt(2.0 / hess) if hess > 0.0 else math.inf
    out[r, NITER] = niter
    out[r, CONVERGED] = 1.0 if converged else 0.0
