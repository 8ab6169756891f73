"""Flux-only Cash fits: the best norms of linear templates, with errors and TS.

:func:`fit_norm` solves one free norm by a safeguarded Newton iteration on the
derivative of the statistic (convex in the norm), bracketed between the lowest
norm that keeps every predicted count non-negative (``-min(b/s)``, gammapy's
convention) and an upper bound where the derivative is positive.
:func:`fit_norms` solves several norms at once by a damped Newton iteration.
Both run on any backend: the passes over the bins are the backend's
``cash_reduce``; the few scalar updates per iteration run on the host.

The statistic is ``-2 ln L`` (Cash), so the covariance is ``2 H^-1`` with ``H``
the Hessian of the statistic, as MINUIT's HESSE gives for gammapy (errordef 1).
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["NormFitResult", "fit_norm", "fit_norms"]

#: Relative convergence tolerance on the norm, in units of its error.
DEFAULT_RTOL = 1e-10


@dataclass
class NormFitResult:
    """Result of a flux-only fit.

    Attributes
    ----------
    norm : ndarray, shape (K,)
        Best-fit norms (same unit as the templates' norm, i.e. dimensionless factors).
    norm_err : ndarray, shape (K,)
        Symmetric errors from the curvature, ``sqrt(diag(covariance))``.
    covariance : ndarray, shape (K, K)
        ``2 H^-1`` at the best fit.
    stat : float
        Cash statistic at the best fit.
    ts : ndarray, shape (K,)
        ``stat(null) - stat(best)`` for each norm, where the null hypothesis has
        that norm at zero and the other norms refitted.
    niter : int
        Newton iterations.
    n_evaluations : int
        Passes over the bins (each gives statistic and/or derivatives).
    success : bool
    message : str
    errn, errp, ul : ndarray, shape (K,)
        Asymmetric errors and upper limit (only for one norm, when asked; else NaN).
    """

    norm: np.ndarray
    norm_err: np.ndarray
    covariance: np.ndarray
    stat: float
    ts: np.ndarray
    niter: int
    n_evaluations: int
    success: bool
    message: str
    errn: np.ndarray = field(default_factory=lambda: np.array([np.nan]))
    errp: np.ndarray = field(default_factory=lambda: np.array([np.nan]))
    ul: np.ndarray = field(default_factory=lambda: np.array([np.nan]))


def _bounds(problem, bounds):
    lower = problem.lower_limits.copy()
    upper = np.full(problem.n_norms, np.inf)
    if bounds is not None:
        user = np.asarray(bounds, dtype=np.float64).reshape(problem.n_norms, 2)
        user = np.where(np.isnan(user), [-np.inf, np.inf], user)
        lower = np.maximum(lower, user[:, 0])
        upper = np.minimum(upper, user[:, 1])
    if np.any(lower > upper):
        raise ValueError(f"empty norm range: lower {lower}, upper {upper}")
    return lower, upper


def _gradient(problem, norm):
    _, grad, hess = problem.reduce(np.array([norm]), need_stat=False)
    return grad[0], hess[0, 0]


def _root_scan(problem, target, start, end, best, max_iter):
    """Norm between ``start`` (below target) and ``end`` where stat == target."""
    lo, hi = start, end  # stat(lo) < target, stat(hi) >= target (or bound)
    x = hi if np.isfinite(hi) else start
    for _ in range(max_iter):
        stat, grad, _ = problem.reduce(np.array([x]), need_stat=True)
        f = stat - target
        if f >= 0:
            hi = x
        else:
            lo = x
        if f == 0:
            return x
        step = f / grad[0] if grad[0] != 0 else np.nan
        new = x - step
        if not (min(lo, hi) < new < max(lo, hi)):
            new = 0.5 * (lo + hi)
        if abs(new - x) <= 1e-10 * max(abs(new - best), 1e-300):
            return new
        x = new
    return x


def _asymmetric_errors(
    problem, best, stat_best, sigma, lower, upper, n_sigma, n_sigma_ul, max_iter, want
):
    errn = errp = ul = np.nan

    def right_root(n):
        target = stat_best + n * n
        hi = best + max(n * sigma, 1e-300)
        for _ in range(200):
            if hi >= upper or problem.stat(np.array([hi])) >= target:
                break
            hi = best + 2.0 * (hi - best)
        hi = min(hi, upper)
        if problem.stat(np.array([hi])) < target:
            return hi
        return _root_scan(problem, target, best, hi, best, max_iter)

    if "errp" in want:
        errp = right_root(n_sigma) - best
    if "ul" in want:
        ul = right_root(n_sigma_ul)
    if "errn" in want:
        target = stat_best + n_sigma * n_sigma
        lo = best - n_sigma * sigma
        if lo <= lower:
            lo = lower + 1e-12 * max(abs(lower), sigma)
        if problem.stat(np.array([lo])) < target:
            errn = best - lo
        else:
            errn = best - _root_scan(problem, target, best, lo, best, max_iter)
    return np.array([errn]), np.array([errp]), np.array([ul])


def _newton_norm(problem, x0, physical, rtol, max_iter):
    """Newton search of the single norm's minimum above the physical limit ``-min(b/s)``.

    Returns
    -------
    best : float
        The norm at the minimum, at least ``physical`` (``-min(b/s)``).
    success : bool
        False when ``max_iter`` iterations did not converge.
    message : str
        Why the search stopped.
    niter : int
        Newton iterations (0 without counts under the template).
    """
    success, message, niter = True, "converged", 0
    if problem.counts_sum == 0:
        # No counts where the template lives: the statistic increases with the norm.
        best = physical
        message = "no counts where the template is non-zero: norm at its lower bound"
    else:
        # The derivative g of the statistic is increasing and concave in the norm, so
        # Newton from the left of the root never overshoots it, and from the right it
        # lands on the left: only the physical lower limit -min(b/s) needs guarding.
        # Start from the excess estimate (better than a caller's guess in practice).
        x = (problem.counts_sum - problem.fixed_sum) / problem.template_sums[0]
        if x <= physical and x0 is not None and np.isfinite(x0):
            x = x0
        if x <= physical:
            x = 0.5 * physical if physical < 0 else problem.counts_sum / problem.template_sums[0]
        lo, hi = physical, np.inf
        best, boundary_checked = x, False
        for niter in range(1, max_iter + 1):
            grad, hess = _gradient(problem, x)
            if grad > 0:
                hi = x
            elif grad < 0:
                lo = x
            else:
                best = x
                break
            step = grad / hess if hess > 0 else np.nan
            sigma = np.sqrt(2.0 / hess) if hess > 0 else np.inf
            if abs(step) <= rtol * sigma:
                best = min(max(x - step, lo), hi)
                break
            new = x - step
            if new <= lo and lo == physical and not boundary_checked:
                # The minimum may sit on -min(b/s) itself (the bin reaching mu = 0 has
                # no counts, so the derivative stays finite there): test it once.
                boundary_checked = True
                if np.isfinite(physical) and _gradient(problem, physical)[0] >= 0:
                    best = physical
                    message = "norm at -min(b/s), the lowest physical value"
                    break
            if not lo < new < hi:  # bisect (towards -min(b/s) if unbounded above)
                new = 0.5 * (lo + hi) if np.isfinite(hi) else 0.5 * (lo + x)
                if not np.isfinite(new):
                    new = 2.0 * abs(x) + 1.0
            x = best = new
        else:
            success, message = False, f"not converged after {max_iter} iterations"
    return best, success, message, niter


def fit_norm(
    problem,
    x0=None,
    bounds=None,
    rtol=DEFAULT_RTOL,
    max_iter=100,
    n_sigma=1.0,
    n_sigma_ul=2.0,
    selection=(),
):
    """Fit the single free norm of a :class:`~rtafast_kernels.CashProblem`.

    Parameters
    ----------
    problem : CashProblem
        With ``n_norms == 1``.
    x0 : float, optional
        Starting norm used only when the excess estimate ``(sum n - sum b) / sum s``
        falls below ``-min(b/s)``.
    bounds : (float, float), optional
        Extra limits on the norm (NaN or inf for none), on top of ``-min(b/s)``.
    rtol : float
        Stop when the Newton step is below ``rtol`` times the norm's error.
    max_iter : int
        Maximum Newton iterations.
    n_sigma, n_sigma_ul : float
        Significance of ``errn``/``errp`` and of the upper limit ``ul``.
    selection : iterable of {"errn-errp", "ul"}
        Optional quantities, as gammapy's ``selection_optional``.

    Returns
    -------
    NormFitResult
    """
    if problem.n_norms != 1:
        raise ValueError(f"fit_norm fits one norm, the problem has {problem.n_norms}")
    lower, upper = (b[0] for b in _bounds(problem, bounds))
    physical = problem.lower_limits[0]
    evaluations_before = problem.n_evaluations

    best, success, message, niter = _newton_norm(problem, x0, physical, rtol, max_iter)
    # The statistic is convex in the norm: the bounded minimum is the clipped one.
    if best < lower:
        best, message = lower, "norm at its lower bound"
    elif best > upper:
        best, message = upper, "norm at its upper bound"

    stat_best, _, hess = problem.reduce(np.array([best]), need_stat=True)
    covariance = np.array([[2.0 / hess[0, 0]]]) if hess[0, 0] > 0 else np.array([[np.inf]])
    norm_err = np.sqrt(np.diag(covariance))
    stat_null = problem.stat(np.zeros(1))
    result = NormFitResult(
        norm=np.array([best]),
        norm_err=norm_err,
        covariance=covariance,
        stat=stat_best,
        ts=np.array([stat_null - stat_best]),
        niter=niter,
        n_evaluations=0,
        success=success,
        message=message,
    )
    want = set()
    for item in selection:
        want |= {"errn", "errp"} if item == "errn-errp" else {item}
    if want:
        result.errn, result.errp, result.ul = _asymmetric_errors(
            problem,
            best,
            stat_best,
            norm_err[0],
            lower,
            upper,
            n_sigma,
            n_sigma_ul,
            max_iter,
            want,
        )
    result.n_evaluations = problem.n_evaluations - evaluations_before
    return result


def _newton_step(hess, grad):
    """Solve ``hess @ step = grad`` after scaling to unit diagonal.

    Norms of different components can differ by many orders of magnitude (a flux
    amplitude ~1e-11 next to a background norm ~1): scaling keeps the solve exact.
    """
    diag = np.diag(hess)
    scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
    scaled = hess * scale[:, None] * scale[None, :]
    try:
        return scale * np.linalg.solve(scaled, grad * scale)
    except np.linalg.LinAlgError:
        return scale * np.linalg.lstsq(scaled, grad * scale, rcond=None)[0]


def fit_norms(problem, x0=None, bounds=None, rtol=DEFAULT_RTOL, max_iter=100, ts_for=None):
    """Fit all free norms of a :class:`~rtafast_kernels.CashProblem` jointly.

    Damped Newton: the full step ``H^-1 g`` is halved until the statistic does
    not increase; the norms are clipped to ``bounds`` (projected Newton). With
    one norm it calls :func:`fit_norm`.

    Parameters
    ----------
    problem : CashProblem
    x0 : array_like, shape (K,), optional
        Starting norms (default 1).
    bounds : array_like, shape (K, 2), optional
        Lower and upper limits per norm (NaN or inf for none).
    rtol : float
        Stop when every step is below ``rtol`` times that norm's error.
    max_iter : int
        Maximum Newton iterations.
    ts_for : iterable of int, optional
        Norms whose TS is computed (each needs a refit of the others); default all.
        The others get NaN.

    Returns
    -------
    NormFitResult
    """
    k = problem.n_norms
    if k == 1:
        x = None if x0 is None else float(np.atleast_1d(x0)[0])
        b = None if bounds is None else np.asarray(bounds, dtype=float).reshape(2)
        return fit_norm(problem, x0=x, bounds=b, rtol=rtol, max_iter=max_iter)
    user_lower, user_upper = _bounds(problem, bounds)
    user_lower = np.where(user_lower > problem.lower_limits, user_lower, -np.inf)
    evaluations_before = problem.n_evaluations

    x = np.ones(k) if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    x = np.clip(x, user_lower, user_upper)
    stat, grad, hess = problem.reduce(x, need_stat=True)
    success, message, niter = False, f"not converged after {max_iter} iterations", 0
    for niter in range(1, max_iter + 1):
        step = _newton_step(hess, grad)
        t = 1.0
        while True:
            trial = np.clip(x - t * step, user_lower, user_upper)
            trial_stat, trial_grad, trial_hess = problem.reduce(trial, need_stat=True)
            # accept when not worse, allowing for rounding noise of the sum
            if trial_stat <= stat + 1e-13 * abs(stat) or t < 1e-12:
                break
            t *= 0.5
        moved = np.abs(trial - x)
        x, stat, grad, hess = trial, trial_stat, trial_grad, trial_hess
        sigma = np.sqrt(2.0 / np.where(np.diag(hess) > 0, np.diag(hess), np.inf))
        if np.all(moved <= rtol * np.maximum(sigma, 1e-300)):
            success, message = True, "converged"
            break
    try:
        diag = np.diag(hess)
        scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
        scaled_inverse = np.linalg.inv(hess * scale[:, None] * scale[None, :])
        covariance = 2.0 * scaled_inverse * scale[:, None] * scale[None, :]
    except np.linalg.LinAlgError:
        covariance = np.full((k, k), np.inf)
        success, message = False, "singular Hessian at the best fit"
    ts = np.full(k, np.nan)
    for j in range(k) if ts_for is None else ts_for:
        # Null hypothesis: norm j at zero, the other norms refitted.
        others = [i for i in range(k) if i != j]
        null_bounds = None if bounds is None else np.asarray(bounds, float).reshape(k, 2)[others]
        null = fit_norms(
            problem.subproblem(others),
            x0=x[others],
            bounds=null_bounds,
            rtol=rtol,
            max_iter=max_iter,
        )
        ts[j] = null.stat - stat
    return NormFitResult(
        norm=x,
        norm_err=np.sqrt(np.abs(np.diag(covariance))),
        covariance=covariance,
        stat=stat,
        ts=ts,
        niter=niter,
        n_evaluations=problem.n_evaluations - evaluations_before,
        success=success,
        message=message,
    )
