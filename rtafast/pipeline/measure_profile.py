"""The flux fit's solvers with the background norm free: the bound and the profile.

With the amplitude and the FoV background norm free, every prediction stays
non-negative: :func:`_fit_on_bound` takes the optimum on the amplitude's lower bound
``-b min(B/s)`` (:func:`_lowest_ratio`) when the free optimum lies beyond it, and the
upper limit is the root (:func:`_profile_root`) of the statistic profiled over the
background norm (:class:`_Profile`). The constants of the fits (:data:`UL_N_SIGMA`,
tolerances, the host backend the compact problems are solved on) are defined here.
"""

import math

import numpy as np

from rtafast_kernels import NormFitResult, fit_norm, resolve_backend

from ..fit.device_problem import cash_problem

__all__ = ["UL_N_SIGMA"]

#: Significance of the upper limit: the norm where the (profile) statistic rises by 2**2
#: above its minimum (gammapy's ``n_sigma_ul=2``; 95 % one-sided is 1.64 sigma, gammapy's
#: convention calls this the 95 % upper limit).
UL_N_SIGMA = 2.0
#: Relative convergence tolerance of the profile fits, in units of the norm's error.
_RTOL = 1e-10
_MAX_ITER = 100
#: Where the compacted fit problems are solved (a few hundred bins: the host is fastest).
_HOST_BACKEND = resolve_backend("numpy")


def _lowest_ratio(templates):
    """``min(B / s)`` over the bins with ``s > 0`` (templates ``(s, B)``)."""
    signal, background = templates
    positive = signal > 0
    return float(np.min(background[positive] / signal[positive])) if positive.any() else np.inf


def _fit_on_bound(problem, bins, ratio):
    """The best ``(a, b)`` with ``a = -b r``: a one-norm fit of ``b`` (template
    ``B - r s``), errors from the two-norm Hessian there."""
    counts, _, (signal, background) = bins
    along = np.clip(background - ratio * signal, 0.0, None)
    fit = fit_norm(cash_problem(counts, np.zeros(counts.size), along[None, :], _HOST_BACKEND))
    b = float(fit.norm[0])
    norms = np.array([-ratio * b, b])
    stat, _, hess = problem.reduce(norms, need_stat=True)
    try:
        covariance = 2.0 * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        covariance = np.full((2, 2), np.nan)
    return NormFitResult(
        norm=norms,
        norm_err=np.sqrt(np.abs(np.diag(covariance))),
        covariance=covariance,
        stat=float(stat),
        ts=np.full(2, np.nan),
        niter=fit.niter,
        n_evaluations=fit.n_evaluations,
        success=fit.success,
        message=f"amplitude on its lower bound -b min(B/s) ({fit.message})",
    )


class _Profile:
    """The statistic at a fixed amplitude ``a``, minimised over the background norm
    ``b >= max(0, -a / r)`` (every prediction non-negative)."""

    def __init__(self, problem, background_norm, ratio):
        self.problem = problem
        self.background_norm = background_norm  # start of the next inner fit
        self.ratio = ratio

    def __call__(self, amplitude):
        """Profile statistic and its derivative in the amplitude (envelope theorem)."""
        lowest = 0.0 if amplitude >= 0 or self.ratio == np.inf else -amplitude / self.ratio
        b = max(self.background_norm, lowest)
        for _ in range(_MAX_ITER):
            _, grad, hess = self.problem.reduce(np.array([amplitude, b]), need_stat=False)
            if not (hess[1, 1] > 0 and math.isfinite(grad[1])):
                break
            new = b - grad[1] / hess[1, 1]
            if new <= lowest:
                new = 0.5 * (b + lowest)
            converged = abs(new - b) <= _RTOL * math.sqrt(2.0 / hess[1, 1])
            b = new
            if converged:
                break
        stat, grad, _ = self.problem.reduce(np.array([amplitude, b]), need_stat=True)
        self.background_norm = b
        return float(stat), float(grad[0])


def _profile_root(profile, best, target, error):
    """The amplitude above ``best`` where the profile statistic reaches ``target``."""
    inside, outside = best, None
    step = UL_N_SIGMA * error
    x = best + step
    for _ in range(200):  # bracket the root
        stat, _ = profile(x)
        if stat >= target:
            outside = x
            break
        inside, step = x, 2.0 * step
        x = best + step
    if outside is None:
        return math.nan
    x = 0.5 * (inside + outside)
    for _ in range(_MAX_ITER):
        stat, grad = profile(x)
        f = stat - target
        if f > 0:
            outside = x
        else:
            inside = x
        new = x - f / grad if grad > 0 else math.nan
        if not inside < new < outside:
            new = 0.5 * (inside + outside)
        if abs(new - x) <= 1e-10 * error or f == 0:
            return new
        x = new
    return x
