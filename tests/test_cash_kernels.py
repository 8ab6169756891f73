"""The Cash statistic and its derivatives, on every backend, against gammapy and NumPy."""

import numpy as np
import pytest
from gammapy.stats import cash
from gammapy.stats.fit_statistics_jit import cash_sum_jit
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import rtafast_kernels as rk


def _random_bins(seed, n=500):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0, 5, n)
    mu[:20] = 0.0  # truncated
    mu[20:30] = -1.0  # negative predictions are truncated too
    mu[30:40] = 1e-30
    counts = rng.poisson(np.clip(mu, 0, None) + 0.5).astype(float)
    counts[::7] = 0.0
    return counts, mu


def test_cash_sum_matches_gammapy(backend):
    counts, mu = _random_bins(0)
    expected = cash_sum_jit(counts, mu)
    assert rk.cash_sum(counts, mu, backend=backend) == pytest.approx(expected, rel=1e-12)
    # and gammapy's per-bin array where n > 0 or mu > 0 (its n ln mu term needs n > 0)
    per_bin = cash(counts, mu)
    fine = counts > 0
    partial = rk.cash_sum(counts[fine], mu[fine], backend=backend)
    assert partial == pytest.approx(per_bin[fine].sum(), rel=1e-12)


def test_cash_reduce_derivatives(backend):
    rng = np.random.default_rng(3)
    n = 400
    templates = rng.uniform(0, 1, (2, n))
    templates[0, 200:] = 0.0
    fixed = rng.uniform(0.1, 2, n)
    norms = np.array([1.5, 0.8])
    counts = rng.poisson(fixed + norms @ templates).astype(float)
    args = [backend.asarray(a) for a in (counts, fixed, templates)]
    stat, grad, hess = backend.cash_reduce(*args, norms, True)

    def f(x):
        return rk.cash_sum(counts, fixed + x @ templates, backend="numpy")

    assert stat == pytest.approx(f(norms), rel=1e-12)
    eps = 1e-6
    for k in range(2):
        step = np.zeros(2)
        step[k] = eps
        numeric = (f(norms + step) - f(norms - step)) / (2 * eps)
        assert grad[k] == pytest.approx(numeric, rel=1e-6, abs=1e-6)
    reference = rk.resolve_backend("numpy").cash_reduce(counts, fixed, templates, norms, True)
    np.testing.assert_allclose(grad, reference[1], rtol=1e-12)
    np.testing.assert_allclose(hess, reference[2], rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    counts=arrays(np.float64, 64, elements=st.integers(0, 20).map(float)),
    mu=arrays(np.float64, 64, elements=st.floats(-1, 50, allow_nan=False)),
)
def test_cash_sum_property_cpu_backends_agree_with_gammapy(counts, mu):
    expected = cash_sum_jit(counts, mu)
    for name in ("numpy", "numba"):
        assert rk.cash_sum(counts, mu, backend=name) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_non_finite_inputs_rejected():
    with pytest.raises(ValueError, match="counts has 1 non-finite"):
        rk.CashProblem([1.0, np.nan], [1.0, 1.0], [1.0, 1.0], backend="numpy")
    with pytest.raises(ValueError, match="fixed has 1 non-finite"):
        rk.CashProblem([1.0, 1.0], [1.0, np.inf], [1.0, 1.0], backend="numpy")
    with pytest.raises(ValueError, match="shape mismatch"):
        rk.CashProblem([1.0, 1.0], [1.0], [1.0, 1.0], backend="numpy")
    with pytest.raises(ValueError, match="no bins"):
        rk.CashProblem([], [], [[]], backend="numpy")
