"""Flux-only fits of the kernel layer against brute-force minimisation and across backends."""

import numpy as np
import pytest
from scipy.optimize import brentq, minimize, minimize_scalar

import rtafast_kernels as rk


def _problem(seed, n=300, true_norm=3.0, background=1.0):
    rng = np.random.default_rng(seed)
    fixed = rng.uniform(0.2, 2.0, n) * background
    template = np.zeros(n)
    template[: n // 3] = rng.uniform(0.0, 1.0, n // 3)
    counts = rng.poisson(np.clip(fixed + true_norm * template, 0, None)).astype(float)
    return counts, fixed, template


def _stat(counts, fixed, templates, norms):
    return rk.cash_sum(
        counts, fixed + np.atleast_1d(norms) @ np.atleast_2d(templates), backend="numpy"
    )


@pytest.mark.parametrize("seed,true_norm", [(0, 3.0), (1, 0.0), (2, -0.3), (3, 20.0)])
def test_fit_norm_matches_brute_force(backend, seed, true_norm):
    counts, fixed, template = _problem(seed, true_norm=true_norm)
    problem = rk.CashProblem(counts, fixed, template, backend=backend)
    result = rk.fit_norm(problem, selection=["errn-errp", "ul"])
    assert result.success, result.message

    lower = -np.min(fixed[template > 0] / template[template > 0])
    brute = minimize_scalar(
        lambda a: _stat(counts, fixed, template, a),
        bounds=(lower + 1e-9, 100),
        method="bounded",
        options={"xatol": 1e-12},
    )
    sigma = result.norm_err[0]
    assert abs(result.norm[0] - brute.x) <= 1e-5 * sigma
    assert result.stat == pytest.approx(_stat(counts, fixed, template, result.norm), rel=1e-12)
    assert result.ts[0] == pytest.approx(
        _stat(counts, fixed, template, 0.0) - result.stat, abs=1e-8
    )
    # curvature error: numerical second derivative of the statistic
    eps = 1e-4 * sigma
    f = lambda a: _stat(counts, fixed, template, a)  # noqa: E731
    h = (f(result.norm[0] + eps) - 2 * f(result.norm[0]) + f(result.norm[0] - eps)) / eps**2
    assert sigma == pytest.approx(np.sqrt(2 / h), rel=1e-3)
    # asymmetric errors and upper limit solve delta stat = n_sigma^2
    best, smin = result.norm[0], result.stat
    errp = brentq(lambda a: f(a) - smin - 1, best, best + 10 * sigma) - best
    errn = best - brentq(lambda a: f(a) - smin - 1, max(lower + 1e-12, best - 10 * sigma), best)
    ul = brentq(lambda a: f(a) - smin - 4, best, best + 20 * sigma)
    assert result.errp[0] == pytest.approx(errp, rel=1e-6)
    assert result.errn[0] == pytest.approx(errn, rel=1e-6)
    assert result.ul[0] == pytest.approx(ul, rel=1e-8)


def test_negative_norm_allowed_down_to_lower_limit(backend):
    # Deficit of counts: the best norm is negative, within -min(b/s).
    rng = np.random.default_rng(5)
    fixed = np.full(200, 5.0)
    template = np.zeros(200)
    template[:50] = 1.0
    counts = rng.poisson(fixed).astype(float)
    counts[:50] = rng.poisson(3.0, 50)
    result = rk.fit_norm(rk.CashProblem(counts, fixed, template, backend=backend))
    assert -5.0 < result.norm[0] < 0.0
    assert result.norm[0] == pytest.approx(counts[:50].mean() - 5.0, rel=1e-8)


def test_user_bounds_are_respected(backend):
    counts, fixed, template = _problem(7, true_norm=-0.5)
    problem = rk.CashProblem(counts, fixed, template, backend=backend)
    result = rk.fit_norm(problem, bounds=(0.0, np.nan))
    assert result.norm[0] == 0.0
    assert "lower bound" in result.message


def test_fit_norms_two_components_matches_scipy(backend):
    rng = np.random.default_rng(11)
    n = 300
    source = np.zeros(n)
    source[:80] = rng.uniform(0, 2, 80)
    background = rng.uniform(0.5, 1.5, n)
    counts = rng.poisson(2.0 * source + 1.1 * background).astype(float)
    templates = np.array([source * 1e-11, background])  # very different scales
    problem = rk.CashProblem(counts, np.zeros(n), templates, backend=backend)
    result = rk.fit_norms(problem, x0=[1e11, 1.0])
    assert result.success, result.message

    scale = np.array([1e11, 1.0])
    brute = minimize(
        lambda y: _stat(counts, np.zeros(n), templates, y * scale),
        x0=[1.0, 1.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 10000},
    )
    np.testing.assert_allclose(result.norm / scale, brute.x, rtol=1e-5)
    assert result.stat <= brute.fun + 1e-8
    # TS of the source: the background norm refitted under the null hypothesis
    null = minimize_scalar(
        lambda b: _stat(counts, np.zeros(n), templates[1], b),
        bounds=(0.1, 5),
        method="bounded",
        options={"xatol": 1e-12},
    )
    assert result.ts[0] == pytest.approx(null.fun - result.stat, abs=1e-6)
    # covariance: inverse of half the Hessian of the statistic
    h = np.empty((2, 2))
    eps = 1e-4 * result.norm_err
    f = lambda x: _stat(counts, np.zeros(n), templates, x)  # noqa: E731
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * eps[i], np.eye(2)[j] * eps[j]
            x = result.norm
            h[i, j] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                4 * eps[i] * eps[j]
            )
    np.testing.assert_allclose(result.covariance, 2 * np.linalg.inv(h), rtol=1e-3)


def test_backends_agree_to_1e9(backend):
    counts, fixed, template = _problem(21, n=400)
    reference = rk.fit_norm(
        rk.CashProblem(counts, fixed, template, backend="numpy"), selection=["errn-errp", "ul"]
    )
    result = rk.fit_norm(
        rk.CashProblem(counts, fixed, template, backend=backend), selection=["errn-errp", "ul"]
    )
    for name in ("norm", "norm_err", "ts", "errn", "errp", "ul"):
        np.testing.assert_allclose(getattr(result, name), getattr(reference, name), rtol=1e-9)
    assert result.stat == pytest.approx(reference.stat, rel=1e-12)


def test_no_counts_under_template_gives_lower_bound():
    fixed = np.ones(10)
    template = np.zeros(10)
    template[:3] = 1.0
    counts = np.zeros(10)
    counts[5:] = 2
    result = rk.fit_norm(rk.CashProblem(counts, fixed, template, backend="numpy"))
    assert result.norm[0] == pytest.approx(-1.0)
    assert "no counts" in result.message


def test_minimum_on_the_physical_limit(backend):
    """When the bin limiting -min(b/s) has no counts, the minimum can sit on the limit."""
    counts, fixed, template = _problem(7, true_norm=-0.5)
    problem = rk.CashProblem(counts, fixed, template, backend=backend)
    result = rk.fit_norm(problem)
    limit = problem.lower_limits[0]
    grad = problem.reduce([limit], need_stat=False)[1][0]
    assert grad >= 0  # the statistic increases from the limit: it is the minimum
    assert result.norm[0] == limit
    assert result.niter < 10 and "lowest physical" in result.message
