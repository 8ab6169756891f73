"""Trials family in plain NumPy: every row's one-norm Cash fit, vectorised over rows.

The twin of :mod:`rtafast_kernels.trials.element` (same Newton iteration, bracket,
boundary test and bisection, applied to the rows still iterating as arrays), for the
tests and the numpy backend. Every bin is summed at every norm (no listed bins), and the
TS is the difference of the truncated Cash terms of each bin at the norms 0 and best
(gammapy's formula), not the element's ``n ln(mu / b) - x s``.
"""

import numpy as np

from ..cash.element import TRUNCATION_VALUE
from .element import (
    CONVERGED,
    FIXED_SUM,
    LOWER,
    MAX_ITER,
    NITER,
    NORM,
    NORM_ERR,
    RTOL,
    TEMPLATE_SUM,
    TS,
)

__all__ = ["BLOCK_ROWS", "cash_terms", "fit_norm_rows", "gradient"]

#: Rows fitted together (bounds the temporaries to a few ``(BLOCK_ROWS, n_bins)`` arrays).
BLOCK_ROWS = 4096


def cash_terms(counts, mu):
    """Half the Cash statistic of each bin, ``mu - n ln mu``, with gammapy's truncation."""
    mu = np.where(mu <= TRUNCATION_VALUE, TRUNCATION_VALUE, mu)
    return mu - np.where(counts > 0, counts * np.log(mu), 0.0)


def gradient(counts, fixed, template, x):
    """Derivative and second derivative of each row's statistic at its norm.

    Parameters
    ----------
    counts : ndarray, shape (R, n_bins)
    fixed, template : ndarray, shape (n_bins,)
    x : ndarray, shape (R,)

    Returns
    -------
    grad, hess : ndarray, shape (R,)
        ``2 sum s (1 - n / mu)`` and ``2 sum s^2 n / mu^2`` over the bins whose
        prediction ``mu = b + x s`` is above the truncation value.
    """
    mu = fixed + x[:, None] * template
    live = mu > TRUNCATION_VALUE
    safe = np.where(live, mu, 1.0)
    dmu = np.where(live, 1.0 - counts / safe, 0.0)
    d2mu = np.where(live, counts / (safe * safe), 0.0)
    return 2.0 * (dmu @ template), 2.0 * (d2mu @ (template * template))


def _boundary_holds(counts, fixed, template, lower, rows):
    """Rows (indices) whose statistic does not decrease from the limit ``lower`` on."""
    if not np.isfinite(lower) or rows.size == 0:
        return np.zeros(rows.size, dtype=bool)
    grad, _ = gradient(counts[rows], fixed, template, np.full(rows.size, lower))
    return grad >= 0.0


def _newton(counts, fixed, template, lower, fixed_sum, template_sum, rtol, max_iter):
    """Best norm, iterations and converged flag of each row (the element's iteration)."""
    n_rows = counts.shape[0]
    counts_sum = counts[:, template != 0.0].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (counts_sum - fixed_sum) / template_sum
        start = 0.5 * lower if lower < 0.0 else counts_sum / template_sum
    x = np.where(x <= lower, start, x)
    running = counts_sum != 0.0  # no counts under the template: the norm at `lower`
    best = np.where(running, x, lower)
    niter = np.zeros(n_rows, dtype=np.int64)
    lo, hi = np.full(n_rows, lower), np.full(n_rows, np.inf)
    checked = np.zeros(n_rows, dtype=bool)
    for iteration in range(1, max_iter + 1):
        rows = np.flatnonzero(running)
        if rows.size == 0:
            break
        xr = x[rows]
        grad, hess = gradient(counts[rows], fixed, template, xr)
        niter[rows] = iteration
        hi[rows] = np.where(grad > 0.0, xr, hi[rows])
        lo[rows] = np.where(grad < 0.0, xr, lo[rows])
        lo_r, hi_r = lo[rows], hi[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(hess > 0.0, grad / hess, np.nan)
            sigma = np.where(hess > 0.0, np.sqrt(2.0 / hess), np.inf)
        flat = grad == 0.0
        small = ~flat & (np.abs(step) <= rtol * sigma)
        best[rows[flat]] = xr[flat]
        best[rows[small]] = np.minimum(np.maximum(xr - step, lo_r), hi_r)[small]
        done = flat | small
        new = xr - step
        # the minimum may sit on the limit itself: tested once, when a step crosses it
        probe = ~done & (new <= lo_r) & (lo_r == lower) & ~checked[rows]
        checked[rows[probe]] = True
        at_limit = np.zeros(rows.size, dtype=bool)
        at_limit[probe] = _boundary_holds(counts, fixed, template, lower, rows[probe])
        best[rows[at_limit]] = lower
        done |= at_limit
        with np.errstate(invalid="ignore"):
            outside = ~((lo_r < new) & (new < hi_r))
            middle = np.where(np.isfinite(hi_r), 0.5 * (lo_r + hi_r), 0.5 * (lo_r + xr))
        middle = np.where(np.isfinite(middle), middle, 2.0 * np.abs(xr) + 1.0)
        new = np.where(outside, middle, new)
        moving = rows[~done]
        x[moving] = best[moving] = new[~done]
        running[rows[done]] = False
    return best, niter, ~running


def _fit_block(counts, fixed, template, lower, fixed_sum, template_sum, rtol, max_iter, out):
    best, niter, converged = _newton(
        counts, fixed, template, lower, fixed_sum, template_sum, rtol, max_iter
    )
    _, hess = gradient(counts, fixed, template, best)
    mu = fixed + best[:, None] * template
    ts = 2.0 * (cash_terms(counts, fixed[None, :]) - cash_terms(counts, mu)).sum(axis=1)
    out[:, NORM] = best
    out[:, TS] = ts
    out[:, NORM_ERR] = np.where(hess > 0.0, np.sqrt(2.0 / np.where(hess > 0.0, hess, 1.0)), np.inf)
    out[:, NITER] = niter
    out[:, CONVERGED] = converged


def fit_norm_rows(backend, counts, fixed, template, settings, out):
    """Operation ``fit_norm_rows`` (numpy); see the family's docstring.

    ``settings[TEMPLATE_MIN]`` is not needed here (every bin is summed at every norm).
    """
    lower, fixed_sum, template_sum = settings[LOWER], settings[FIXED_SUM], settings[TEMPLATE_SUM]
    for start in range(0, counts.shape[0], BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        _fit_block(
            counts[block], fixed, template, lower, fixed_sum, template_sum,
            settings[RTOL], int(settings[MAX_ITER]), out[block],
        )
    return out
