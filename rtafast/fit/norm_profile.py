"""One free norm on arrays: best fit, errors, upper limit and TS, as gammapy's estimators.

:func:`fit_flux_norm` fits ``norm`` in a prediction ``norm * signal`` over 1-d arrays of
fitted bins (any dataset's masked bins flattened; several datasets concatenated make a
joint fit), with either statistic of gammapy:

* **Cash** (``background`` given): ``stat = sum cash(counts, background + norm * signal)``,
  gammapy's ``CashFitStatistic`` (truncation at 1e-25 included);
* **WStat** (``counts_off`` and ``alpha`` given): ``stat = sum wstat(counts, counts_off,
  alpha, norm * signal)`` with the background profiled, gammapy's ``WStatFitStatistic``
  (goodness-of-fit terms included).

The semantics are those of gammapy's ``FluxEstimator``/``FluxPointsEstimator`` (its
``ParameterEstimator`` steps with ``reoptimize=False``) for one free norm:

* the norm starts at 1 and is bounded only by ``norm_min``/``norm_max`` (gammapy's norm
  parameter has no default bounds; the statistic is defined for negative norms too);
* ``norm_err`` is ``n_sigma`` times the Hesse error ``sqrt(2 / H)`` (the statistic is
  ``-2 ln L``; gammapy's ``estimate_best_fit`` multiplies by ``n_sigma``);
* ``norm_errn``/``norm_errp``: where ``stat - stat_best = n_sigma**2`` below and above
  the best fit, searched up to gammapy's confidence bounds (``norm_min``/``norm_max`` or
  ``Parameter.conf_min``/``conf_max``: ``1e5`` times the larger of the error and the
  norm); NaN where the profile does not reach it inside them (gammapy's
  ``find_roots``). ``norm_ul = norm + errp`` at ``n_sigma_ul``;
* ``ts = stat_null - stat`` with ``stat_null`` at norm 0 (``FluxEstimator``'s null value);
* WStat bins with ``n_on = n_off = 0`` put a kink in the statistic at norm 0 (slope
  ``2 sum s`` right, ``-2 sum s / a`` left); where the minimum is that kink the norm
  is exactly 0 with ``success`` True (gammapy: ~1e-8 to 1e-10 from MINUIT, success
  True with its default tolerance), ``norm_err`` NaN (no curvature), and
  ``errn``/``errp``/``ul`` where the linear sides reach the targets;
* no bins: ``norm``, errors, ``ul`` and ``ts`` NaN, ``stat = stat_null = 0``,
  ``success`` False (gammapy's result when no dataset contributes to the statistic).

The minimum is found by Newton's method on the derivative inside a bracket (bisection or
expansion when a step leaves it); the statistic is convex in the norm (WStat everywhere,
Cash wherever no bin with counts is truncated), so the bracket always holds the minimum.
Each iteration is one pass over the bins on the backend (``cash_reduce``,
``wstat_reduce``); the scalar updates run on the host.
"""

import math
from dataclasses import dataclass

import numpy as np

from rtafast_kernels import is_host_array, resolve_backend

from .device_problem import cash_problem

__all__ = ["NormProfile", "fit_flux_norm", "stat_profile", "norm_problem", "minimize_norm"]

#: Relative convergence tolerance on the norm, in units of its Hesse error.
RTOL = 1e-10
#: Maximum iterations of the minimisation and of each root search.
MAX_ITER = 200
#: gammapy's FluxEstimator norm: ``scan_n_sigma`` (max(n_sigma_ul, 5) + 1 by default).
_SCAN_N_SIGMA = 6
#: Norm just left of 0 where the left derivative of a statistic with a kink at 0 is read.
_LEFT_OF_ZERO = -1e-200


@dataclass
class NormProfile:
    """Result of a one-norm fit (gammapy's ``FluxEstimator`` quantities, norm units).

    Attributes
    ----------
    norm : float
        Best-fit norm (NaN without bins).
    norm_err : float
        ``n_sigma * sqrt(2 / H)`` at the best fit (``H`` the second derivative); NaN
        where ``H = 0`` (every fitted WStat bin with ``n_on = n_off = 0``: the minimum
        is the kink at norm 0, where gammapy's MINUIT reports a finite-difference
        artefact of ~1e-4). ``norm_errn``/``norm_errp``/``norm_ul`` are computed there.
    norm_errn, norm_errp : float
        Distances from ``norm`` to ``stat - stat_best = n_sigma**2`` below and above
        (NaN when not computed or not reached inside the confidence bounds).
    norm_ul : float
        ``norm + errp`` at ``n_sigma_ul`` (NaN when not computed or not reached).
    ts : float
        ``stat_null - stat``.
    stat, stat_null : float
        Statistic at the best fit and at norm 0.
    success : bool
        The minimisation converged.
    niter : int
        Newton iterations of the minimisation.
    message : str
        How the minimisation ended.
    n_ignored : int
        WStat bins whose alpha is not a finite positive number: their statistic is NaN
        in gammapy, which counts them 0 (``nan_to_num``); they count 0 here too.
    """

    norm: float
    norm_err: float
    norm_errn: float
    norm_errp: float
    norm_ul: float
    ts: float
    stat: float
    stat_null: float
    success: bool
    niter: int
    message: str = ""
    n_ignored: int = 0

    @classmethod
    def from_minimum(cls, norm, norm_err, stat, stat_null, success, niter, message, n_ignored):
        """The profile of a fit's minimum, before its asymmetric errors and upper limit.

        Parameters
        ----------
        norm, norm_err : float
            Best-fit norm and its error (``n_sigma`` times the Hesse error), norm units.
        stat, stat_null : float
            Statistic (``-2 ln L``) at ``norm`` and at norm 0; ``ts`` is their difference.
        success : bool
            The minimisation converged.
        niter : int
            Iterations (or statistic evaluations) of the minimisation.
        message : str
            How the minimisation ended.
        n_ignored : int
            WStat bins counted 0 (alpha not a finite positive number).

        Returns
        -------
        NormProfile
            ``norm_errn``, ``norm_errp`` and ``norm_ul`` NaN, to be set once computed.
        """
        unset = (math.nan, math.nan, math.nan)  # norm_errn, norm_errp, norm_ul
        ts = stat_null - stat
        return cls(norm, norm_err, *unset, ts, stat, stat_null, success, niter, message, n_ignored)


def _as_float_array(backend, name, array, size=None, scalar=False):
    """A 1-d float64 array on the backend, with the host checks every input gets
    (``scalar``: a single value stands for every bin)."""
    if is_host_array(array) or np.isscalar(array) or isinstance(array, list | tuple):
        host = np.ascontiguousarray(array, dtype=np.float64).ravel()
        if scalar and host.size == 1 and size != 1:
            host = np.full(size, host[0])
        device = backend.asarray(host)
        finite = bool(np.isfinite(host).all())
        negative = int((host < 0).sum())
    else:
        device = backend.xp.ascontiguousarray(array, dtype=np.float64).ravel()
        finite = bool(backend.xp.isfinite(device).all())
        negative = int((device < 0).sum())
    if size is not None and device.shape[0] != size:
        raise ValueError(f"{name} has {device.shape[0]} bins, counts has {size}")
    return device, finite, negative


class _WStatNorm:
    """The WStat statistic of ``norm * signal`` over bins on a backend."""

    def __init__(self, backend, counts, counts_off, alpha, signal):
        self.backend = backend
        xp = backend.xp
        valid = (alpha > 0) & (alpha < np.inf)
        self.n_ignored = int((~valid).sum())
        active = valid & (signal != 0)
        constant = valid & (signal == 0)  # their terms do not depend on the norm
        self.constant = 0.0
        if bool(constant.any()):
            index = xp.flatnonzero(constant)
            self.constant = backend.wstat_reduce(
                counts[index], counts_off[index], alpha[index], signal[index], 0.0
            )[0]
        index = xp.flatnonzero(active)
        self.arrays = tuple(
            xp.ascontiguousarray(a[index]) for a in (counts, counts_off, alpha, signal)
        )
        self.n_active = int(index.shape[0])
        self.counts_sum = float(self.arrays[0].sum())
        # bins with n_on = n_off = 0: statistic 2 s right of s = 0, -2 s / a left of it
        empty = (self.arrays[0] == 0) & (self.arrays[1] == 0)
        self.kink_at_zero = bool(empty.any()) if self.n_active else False
        self.start = 1.0

    def reduce(self, norm, need_stat=True):
        """Statistic, first and second derivative in the norm."""
        if self.n_active == 0:
            return self.constant, 0.0, 0.0
        stat, grad, hess = self.backend.wstat_reduce(*self.arrays, float(norm))
        return stat + self.constant, grad, hess


class _CashNorm:
    """The Cash statistic of ``background + norm * signal`` (an rtafast Cash problem)."""

    def __init__(self, backend, counts, background, signal):
        self.problem = cash_problem(counts, background, signal.reshape(1, -1), backend)
        self.n_ignored = 0
        self.counts_sum = float(self.problem.counts_total)

    def reduce(self, norm, need_stat=True):
        """Statistic (NaN without ``need_stat``), first and second derivative."""
        stat, grad, hess = self.problem.reduce(np.array([float(norm)]), need_stat=need_stat)
        return float(stat), float(grad[0]), float(hess[0, 0])


def norm_problem(counts, signal, *, background=None, counts_off=None, alpha=None, backend=None):
    """The statistic of one norm over arrays: an object with ``reduce(norm)``.

    Parameters
    ----------
    counts, signal : array, shape (N,)
        Observed (on) counts and predicted signal counts at norm 1.
    background : array, shape (N,), optional
        Cash: the fixed predicted counts.
    counts_off, alpha : array, shape (N,) or scalar alpha, optional
        WStat: off counts and on/off exposure ratio.
    backend : backend object or name

    Returns
    -------
    object or None
        ``reduce(norm, need_stat=True) -> (stat, d stat/d norm, d2 stat/d norm2)``,
        ``n_ignored``; None when there are no bins.

    Raises
    ------
    ValueError
        Neither or both statistics' inputs; shape mismatches; non-finite counts,
        signal, background or off counts; negative counts or off counts.
    """
    backend = resolve_backend(backend)
    wstat = counts_off is not None or alpha is not None
    if wstat == (background is not None) or (wstat and (counts_off is None or alpha is None)):
        raise ValueError(
            "give either background (Cash) or both counts_off and alpha (WStat), got "
            f"background={'set' if background is not None else None}, "
            f"counts_off={'set' if counts_off is not None else None}, "
            f"alpha={'set' if alpha is not None else None}"
        )
    counts, finite, negative = _as_float_array(backend, "counts", counts)
    size = counts.shape[0]
    named = {"counts": (counts, finite, negative)}
    named["signal"] = _as_float_array(backend, "signal", signal, size)
    if wstat:
        named["counts_off"] = _as_float_array(backend, "counts_off", counts_off, size)
        alpha_array = _as_float_array(backend, "alpha", alpha, size, scalar=True)[0]
    else:
        named["background"] = _as_float_array(backend, "background", background, size)
    for name, (_, finite, negative) in named.items():
        if not finite:
            raise ValueError(f"{name} has NaN/inf values: remove those bins (mask them)")
        if negative and name in ("counts", "counts_off"):
            raise ValueError(f"{name} has {negative} negative value(s)")
    if size == 0:
        return None
    if wstat:
        return _WStatNorm(backend, counts, named["counts_off"][0], alpha_array, named["signal"][0])
    return _CashNorm(backend, counts, named["background"][0], named["signal"][0])


def _expand(x, direction, span):
    """A point ``span`` further than ``x`` in ``direction`` (+1 or -1)."""
    return x + direction * span


def minimize_norm(problem, lower=-np.inf, upper=np.inf, start=1.0, rtol=RTOL, max_iter=MAX_ITER):
    """Minimise ``problem``'s statistic in one norm by bracketed Newton.

    Parameters
    ----------
    problem : object with ``reduce(norm, need_stat)``
        The statistic (:func:`norm_problem`), convex in the norm; an optional
        ``kink_at_zero`` attribute says its minimum may be the kink at norm 0.
    lower, upper : float
        Bounds of the norm (infinite for none).
    start : float
        Starting norm (clipped into the bounds).
    rtol : float
        Stop when the Newton step is below ``rtol`` times the norm's Hesse error.
    max_iter : int
        Most Newton iterations.

    Returns
    -------
    best : float
        The norm at the minimum, inside ``[lower, upper]``.
    success : bool
        Converged: a zero derivative, a bound, the kink at 0 or a bracket at rounding.
    message : str
        How the search ended.
    niter : int
        Newton iterations (1 for the kink at 0).
    """
    if getattr(problem, "kink_at_zero", False) and lower <= 0.0 <= upper:
        # WStat bins with n_on = n_off = 0 have a kink at norm 0: the minimum is there
        # when the right derivative is >= 0 and the left one <= 0 (bisection would
        # only approach it)
        right = problem.reduce(0.0, need_stat=False)[1]
        left = right if lower == 0.0 else problem.reduce(_LEFT_OF_ZERO, need_stat=False)[1]
        if right >= 0.0 and (left <= 0.0 or lower == 0.0):
            return 0.0, True, "minimum at the kink at norm 0", 1
    lo, hi = lower, upper  # derivative < 0 left of the minimum, > 0 right of it
    x = min(max(start, lower), upper)
    span = max(abs(x), 1.0)
    for niter in range(1, max_iter + 1):
        _, g, h = problem.reduce(x, need_stat=False)
        if not (math.isfinite(g) and math.isfinite(h)):
            return x, False, f"non-finite derivative at norm {x!r}", niter
        if g == 0:
            return x, True, "converged", niter
        if g > 0:
            hi = x
            if x == lower:
                return x, True, "norm at its lower bound", niter
        else:
            lo = x
            if x == upper:
                return x, True, "norm at its upper bound", niter
        new = math.nan
        if h > 0:
            step = g / h
            if abs(step) <= rtol * math.sqrt(2.0 / h):
                return min(max(x - step, lo), hi), True, "converged", niter
            new = x - step
        if not lo < new < hi:
            if new >= hi == upper and math.isfinite(upper) and x != upper:
                new = upper  # test the bound itself: the minimum may sit on it
            elif new <= lo == lower and math.isfinite(lower) and x != lower:
                new = lower
            elif math.isfinite(lo) and math.isfinite(hi):
                new = 0.5 * (lo + hi)
            else:  # expand towards the unbounded side
                span *= 2.0
                new = _expand(x, -1.0 if g > 0 else 1.0, span)
                new = min(max(new, lower), upper)
        if math.isfinite(lo) and math.isfinite(hi) and hi - lo <= 4e-16 * max(abs(lo), abs(hi)):
            return 0.5 * (lo + hi), True, "converged (minimum at a kink)", niter
        x = new
    return x, False, f"not converged after {max_iter} iterations", max_iter


def _conf_bound(best, error, user_bound, direction):
    """gammapy's ``Parameter.conf_min``/``conf_max`` at the best fit."""
    if math.isfinite(user_bound):
        return user_bound
    step = error if error > 0 else abs(best)
    large = max(step, abs(best)) * 1e5
    near = best + direction * step * _SCAN_N_SIGMA
    return max(near, large) if direction > 0 else min(near, -large)


def _root(problem, best, target, bound, guess, max_iter=MAX_ITER):
    """Norm between ``best`` (stat < target) and ``bound`` where stat = target, or NaN."""
    if not math.isfinite(bound) or bound == best:
        return math.nan
    f_bound = problem.reduce(bound)[0] - target
    if not f_bound > 0:
        return math.nan if f_bound < 0 else bound
    inside, outside = best, bound
    x = guess if min(best, bound) < guess < max(best, bound) else 0.5 * (best + bound)
    scale = abs(guess - best) or abs(bound - best)
    for _ in range(max_iter):
        stat, g, _ = problem.reduce(x)
        f = stat - target
        if f == 0:
            return x
        if f > 0:
            outside = x
        else:
            inside = x
        new = x - f / g if g != 0 else math.nan
        if not min(inside, outside) < new < max(inside, outside):
            new = 0.5 * (inside + outside)
        if abs(new - x) <= 1e-12 * scale or abs(outside - inside) <= 1e-12 * scale:
            return new
        x = new
    return x


def _user_problem(counts, signal, background, counts_off, alpha, array_backend):
    """:func:`norm_problem` of the public functions' keywords (``array_backend``)."""
    return norm_problem(
        counts,
        signal,
        background=background,
        counts_off=counts_off,
        alpha=alpha,
        backend=array_backend,
    )


def fit_flux_norm(
    counts,
    signal,
    *,
    background=None,
    counts_off=None,
    alpha=None,
    array_backend=None,
    n_sigma=1.0,
    n_sigma_ul=2.0,
    norm_min=None,
    norm_max=None,
    errn_errp=True,
    ul=True,
):
    """Fit one norm of ``norm * signal`` to counts, as gammapy's ``FluxEstimator``.

    Parameters
    ----------
    counts : array, shape (N,)
        Observed (on) counts of the fitted bins (host or backend array).
    signal : array, shape (N,)
        Predicted signal counts at norm 1.
    background : array, shape (N,), optional
        Cash statistic with this fixed predicted background.
    counts_off, alpha : array, shape (N,) (alpha may be a scalar), optional
        WStat statistic with these off counts and on/off exposure ratios.
    array_backend : {None, "auto", "numpy", "numba", "cuda"}
        Compute backend.
    n_sigma, n_sigma_ul : float
        Significance of ``norm_err``/``norm_errn``/``norm_errp`` and of ``norm_ul``.
    norm_min, norm_max : float, optional
        Bounds of the norm (gammapy's norm ``Parameter.min``/``max``; none by default).
    errn_errp, ul : bool
        Compute the asymmetric errors, the upper limit.

    Returns
    -------
    NormProfile

    Raises
    ------
    ValueError
        Invalid inputs (see :func:`norm_problem`); ``norm_min > norm_max``.
    """
    lower = -np.inf if norm_min is None or np.isnan(norm_min) else float(norm_min)
    upper = np.inf if norm_max is None or np.isnan(norm_max) else float(norm_max)
    if lower > upper:
        raise ValueError(f"norm_min {lower} is above norm_max {upper}")
    problem = _user_problem(counts, signal, background, counts_off, alpha, array_backend)
    nan = math.nan
    if problem is None:
        return NormProfile(nan, nan, nan, nan, nan, nan, 0.0, 0.0, False, 0, "no bins")
    best, success, message, niter = minimize_norm(problem, lower, upper, start=1.0)
    stat, grad, hess = problem.reduce(best)
    error = math.sqrt(2.0 / hess) if hess > 0 else nan
    # no curvature (a minimum at a kink, all bins empty): the confidence bounds and root
    # guesses use the distance over which the statistic rises by 1 along its slope
    scale = error if math.isfinite(error) else (1.0 / abs(grad) if grad else nan)
    stat_null = problem.reduce(0.0)[0]
    result = NormProfile.from_minimum(
        best, n_sigma * error, stat, stat_null, success, niter, message, problem.n_ignored
    )
    guess_error = scale if math.isfinite(scale) and scale > 0 else max(abs(best), 1.0)
    if errn_errp:
        target = stat + n_sigma**2
        bound = _conf_bound(best, scale, upper, +1)
        result.norm_errp = _root(problem, best, target, bound, best + n_sigma * guess_error) - best
        bound = _conf_bound(best, scale, lower, -1)
        result.norm_errn = best - _root(problem, best, target, bound, best - n_sigma * guess_error)
    if ul:
        bound = _conf_bound(best, scale, upper, +1)
        target = stat + n_sigma_ul**2
        result.norm_ul = _root(problem, best, target, bound, best + n_sigma_ul * guess_error)
    return result


def stat_profile(
    counts, signal, norms, *, background=None, counts_off=None, alpha=None, array_backend=None
):
    """The statistic at each norm of ``norms`` (Cash or WStat, as :func:`fit_flux_norm`).

    Parameters
    ----------
    counts, signal : array, shape (N,)
    norms : array_like, shape (M,)
        Norms (dimensionless factors of ``signal``).
    background, counts_off, alpha, array_backend
        As :func:`fit_flux_norm`.

    Returns
    -------
    ndarray, shape (M,)
        The summed statistic (0 at every norm without bins, as gammapy's).
    """
    problem = _user_problem(counts, signal, background, counts_off, alpha, array_backend)
    norms = np.asarray(norms, dtype=np.float64)
    if problem is None:
        return np.zeros(norms.shape)
    return np.array([problem.reduce(float(n))[0] for n in norms.ravel()]).reshape(norms.shape)
