"""The trials kernel family (many one-norm Cash fits at once) on every backend.

Each row is checked against ``fit_norm(CashProblem(counts[r], fixed, template))``, the
single-problem fit whose semantics the kernels copy, and a few rows against a bounded
scipy minimisation of gammapy's ``cash``.

Tolerances. Both fits run the same Newton iteration and stop once a step is below
``rtol = 1e-10`` times the norm's error ``sigma``; the returned norm is the last iterate
minus that step, within ``O(step**2)`` of the root. Rounding (the sums are added in
another order) can at most move the stopping test by one iteration, so the norms agree
to ``rtol * sigma`` (measured: <= 5e-14 sigma); on the limit ``-min(b/s)`` both return it
exactly. The TS is flat at the minimum (a norm off by ``d sigma`` changes it by ``d**2``),
so it agrees to the rounding of the statistic's sums: ``1e-12`` times the sum of the
absolute Cash terms (fit_norm subtracts two statistics of that size; measured <= 1e-14),
or 1e-9 relative. The error ``sqrt(2 / hess)`` agrees to 1e-9 relative.
"""

import numpy as np
import pytest
from gammapy.stats import cash
from scipy.optimize import minimize_scalar

import rtafast_kernels as rk
from rtafast_kernels.trials import TrialFits

N_BINS = 40


def _template(n_bins=N_BINS):
    x = np.arange(n_bins)
    template = 0.8 * np.exp(-0.5 * ((x - n_bins / 2) / 4.0) ** 2)
    template[:5] = 0.0  # bins the template does not touch
    return template


def _rows(rng, fixed, template):
    """Rows covering every path of the fit (see the comments)."""
    lower = -np.min(fixed[template > 0] / template[template > 0])
    mean = lambda norm: np.clip(fixed + norm * template, 0.0, None)  # noqa: E731
    rows = [rng.poisson(fixed) for _ in range(8)]  # null hypothesis
    rows += [rng.poisson(mean(norm)) for norm in (0.3, 1.0, 3.0, 10.0, 100.0)]
    rows += [rng.poisson(mean(f * lower)) for f in (0.5, 0.9, 0.99, 1.0)]  # deficits
    rows.append(rng.poisson(1e4 * (fixed + template)))  # large counts, large norm
    rows.append(rng.poisson(1e-2 * fixed))  # tiny counts (mostly none)
    empty = rng.poisson(fixed).astype(float)
    empty[template > 0] = 0.0  # counts only where the template is zero
    rows.append(empty)
    rows.append(np.zeros_like(fixed))
    single = np.zeros_like(fixed)
    single[np.argmax(np.where(template > 0, fixed / np.maximum(template, 1e-300), 0))] = 1.0
    rows.append(single)  # one count where b/s is largest: the norm sits on -min(b/s)
    rows.append(rng.uniform(0.0, 2.0, fixed.size))  # non-integer counts
    return np.array(rows, dtype=float)


@pytest.fixture(scope="module", params=["ordinary", "zero-background", "sparse"])
def problem(request):
    """``(counts, fixed, template)``: a background of ~1 count per bin; one with bins of
    zero background under the template (``-min(b/s) = 0``, truncated predictions); one
    with ~0.02 counts per bin."""
    rng = np.random.default_rng(["ordinary", "zero-background", "sparse"].index(request.param))
    template = _template()
    fixed = rng.uniform(0.1, 2.0, N_BINS)
    if request.param == "zero-background":
        fixed[[18, 23]] = 0.0
    if request.param == "sparse":
        fixed *= 0.02
    return _rows(rng, fixed, template), fixed, template


@pytest.fixture(scope="module")
def expected(problem):
    """``fit_norm`` of each row (numpy backend)."""
    counts, fixed, template = problem
    return [rk.fit_norm(rk.CashProblem(row, fixed, template, backend="numpy")) for row in counts]


def _host(backend, fits):
    return TrialFits(*(backend.to_numpy(value) for value in fits))


def _null_scale(counts, fixed, template, norm):
    """Sum of the absolute Cash terms at 0 and at ``norm`` (the size of fit_norm's stats)."""
    total = 0.0
    for mu in (fixed, fixed + norm * template):
        mu = np.maximum(mu, rk.TRUNCATION_VALUE)
        total += 2.0 * np.sum(mu + np.abs(np.where(counts > 0, counts * np.log(mu), 0.0)))
    return total


def _compare(fits, counts, fixed, template, expected):
    for r, want in enumerate(expected):
        sigma = want.norm_err[0]
        scale = sigma if np.isfinite(sigma) else 1.0
        assert abs(fits.norm[r] - want.norm[0]) <= 1e-10 * scale, (r, fits.norm[r], want.norm)
        ts_abs = 1e-12 * _null_scale(counts[r], fixed, template, want.norm[0])
        assert fits.ts[r] == pytest.approx(want.ts[0], rel=1e-9, abs=ts_abs), r
        assert fits.norm_err[r] == pytest.approx(sigma, rel=1e-9), r
        assert fits.converged[r] == want.success, r
        assert abs(fits.niter[r] - want.niter) <= 1, (r, fits.niter[r], want.niter)


def test_rows_match_fit_norm(backend, problem, expected):
    counts, fixed, template = problem
    fits = _host(backend, rk.fit_norm_rows(backend.asarray(counts), fixed, template, backend))
    assert fits.niter.dtype == np.int64 and fits.converged.dtype == bool
    _compare(fits, counts, fixed, template, expected)
    # every path was taken: the limit with and without counts, Newton
    lower = -np.min(fixed[template > 0] / template[template > 0])
    on_support = counts[:, template != 0].sum(axis=1)
    at_limit = fits.norm == lower
    assert at_limit[on_support == 0].all() and (fits.niter[on_support == 0] == 0).all()
    assert (at_limit & (on_support > 0)).any()
    assert (fits.niter > 2).any()
    # fit_norm's one failure here, copied: with b = 0 under the template (limit 0) the
    # truncated bins make the derivative jump at x ~ 1e-25, below which it is negative
    # (the test of the limit fails), above positive: bisection until max_iter
    assert fits.converged.all() or (fixed == 0).any()
    same = np.array([fits.niter[r] == e.niter for r, e in enumerate(expected)])
    assert same.mean() >= 0.9  # iteration counts equal but for a rare rounding tie


def test_not_converged_rows_match_fit_norm(backend, problem):
    counts, fixed, template = problem
    fits = _host(backend, rk.fit_norm_rows(counts, fixed, template, backend, max_iter=2))
    want = [
        rk.fit_norm(rk.CashProblem(row, fixed, template, backend="numpy"), max_iter=2)
        for row in counts
    ]
    assert not all(w.success for w in want)
    for r, w in enumerate(want):
        assert fits.converged[r] == w.success and fits.niter[r] == w.niter, r
        assert fits.norm[r] == pytest.approx(w.norm[0], rel=1e-9, abs=1e-12), r


def test_numba_parallel_rows_match_serial_rows():
    """Enough rows for several parallel chunks: each row as when fitted alone."""
    rng = np.random.default_rng(5)
    fixed, template = rng.uniform(0.1, 2.0, N_BINS), _template()
    counts = rng.poisson(fixed + rng.uniform(-0.05, 2.0, (300, 1)) * template).astype(float)
    many = rk.fit_norm_rows(counts, fixed, template, "numba")
    for r in (0, 31, 32, 33, 150, 299):
        one = rk.fit_norm_rows(counts[r : r + 1], fixed, template, "numba")
        for name in TrialFits._fields:
            assert getattr(many, name)[r] == getattr(one, name)[0], (r, name)
    reference = rk.fit_norm_rows(counts, fixed, template, "numpy")
    np.testing.assert_allclose(many.norm, reference.norm, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(many.ts, reference.ts, rtol=1e-9, atol=1e-9)


def test_ts_matches_scipy_minimisation_of_gammapy_cash():
    rng = np.random.default_rng(11)
    fixed, template = rng.uniform(0.1, 2.0, N_BINS), _template()
    norms = (0.0, 1.0, 3.0, 8.0, -0.04)
    counts = np.array([rng.poisson(fixed + norm * template) for norm in norms], dtype=float)
    fits = rk.fit_norm_rows(counts, fixed, template, "numba")
    lower = -np.min(fixed[template > 0] / template[template > 0])
    for r, row in enumerate(counts):
        stat = lambda norm, row=row: float(cash(row, fixed + norm * template).sum())  # noqa: E731
        best = minimize_scalar(
            stat, bounds=(lower, 100.0), method="bounded", options={"xatol": 1e-10}
        )
        ts = stat(0.0) - min(best.fun, stat(lower))
        assert fits.ts[r] == pytest.approx(ts, rel=1e-6, abs=1e-9), r
        assert fits.norm[r] == pytest.approx(best.x, abs=1e-4 * fits.norm_err[r]), r
    assert fits.ts.max() > 25  # a detected source among the rows


@pytest.mark.parametrize(
    "counts, fixed, template, message",
    [
        (np.ones(N_BINS), None, None, "counts must have shape"),
        (np.ones((2, N_BINS - 1)), None, None, "counts must have shape"),
        (-np.ones((2, N_BINS)), None, None, "counts has 80 negative"),
        (np.full((2, N_BINS), np.nan), None, None, "counts has 80 negative or non-finite"),
        (None, -np.ones(N_BINS), None, "fixed has 40 negative"),
        (None, np.full(N_BINS, np.inf), None, "fixed has 40 negative or non-finite"),
        (None, np.ones((2, N_BINS)), None, "fixed must be a non-empty 1-d array"),
        (None, None, -_template(), "template has 35 negative"),
        (None, None, np.zeros(N_BINS), "template has no positive value"),
        (None, np.ones(N_BINS - 1), None, r"fixed \(39,\) and template \(40,\) differ"),
    ],
)
def test_bad_input_names_the_argument(counts, fixed, template, message):
    counts = np.ones((2, N_BINS)) if counts is None else counts
    fixed = np.ones(N_BINS) if fixed is None else fixed
    template = _template() if template is None else template
    with pytest.raises(ValueError, match=message):
        rk.fit_norm_rows(counts, fixed, template, "numpy")


def test_no_rows_and_the_registry():
    fits = rk.fit_norm_rows(np.zeros((0, N_BINS)), np.ones(N_BINS), _template(), "numba")
    assert fits.norm.shape == (0,)
    assert "trials" in rk.registry.FAMILIES
    assert rk.registry.operation_table()["fit_norm_rows"][0] == "trials"
