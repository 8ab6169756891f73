"""The WStat kernel family on every backend, against gammapy's ``wstat`` and finite differences."""

import math

import numpy as np
import pytest
from gammapy.stats import wstat

from rtafast_kernels import resolve_backend
from rtafast_kernels.launch import PARALLEL_THRESHOLD
from rtafast_kernels.wstat import element, reference


def _bins(seed, n=600):
    """On/off bins with every corner: n_on = 0, n_off = 0, both, small and large alpha."""
    rng = np.random.default_rng(seed)
    n_on = rng.poisson(3.0, n).astype(float)
    n_off = rng.poisson(6.0, n).astype(float)
    n_on[::5] = 0.0
    n_off[::7] = 0.0
    n_on[3:40:9] = 250.0
    alpha = rng.uniform(0.02, 3.0, n)
    signal = rng.uniform(0.0, 4.0, n)
    signal[::11] = 0.0
    return n_on, n_off, alpha, signal


def _gammapy_sum(n_on, n_off, alpha, mu_sig):
    return float(np.nan_to_num(wstat(n_on, n_off, alpha, mu_sig)).sum())


@pytest.mark.parametrize("norm", [1.3, 0.0, -0.4, -3.0, 25.0])
def test_wstat_reduce_matches_gammapy(backend, norm):
    bins = _bins(0)
    n_on, n_off, alpha, signal = bins
    stat, grad, hess = backend.wstat_reduce(*(backend.asarray(a) for a in bins), norm)
    assert stat == pytest.approx(_gammapy_sum(n_on, n_off, alpha, norm * signal), rel=1e-12)
    # derivatives: central differences of gammapy's own sum (no bin sits on a kink here:
    # n_on = n_off = 0 bins have their kink at mu_sig = 0, norm = 0 is excluded below)
    if norm != 0.0:
        eps = 1e-6 * max(1.0, abs(norm))

        def f(x):
            return _gammapy_sum(n_on, n_off, alpha, x * signal)

        numeric = (f(norm + eps) - f(norm - eps)) / (2 * eps)
        assert grad == pytest.approx(numeric, rel=1e-6, abs=1e-5)
        eps2 = 1e-4 * max(1.0, abs(norm))
        numeric2 = (f(norm + eps2) - 2 * f(norm) + f(norm - eps2)) / eps2**2
        assert hess == pytest.approx(numeric2, rel=1e-4)
    expected = resolve_backend("numpy").wstat_reduce(*bins, norm)
    np.testing.assert_allclose([stat, grad, hess], expected, rtol=1e-9)


def test_wstat_reduce_parallel_chunks():
    """Above the parallel threshold the numba reduction splits into chunks: same sums."""
    bins = _bins(1, n=PARALLEL_THRESHOLD + 5000)
    expected = resolve_backend("numpy").wstat_reduce(*bins, 0.8)
    got = resolve_backend("numba").wstat_reduce(*bins, 0.8)
    np.testing.assert_allclose(got, expected, rtol=1e-11)
    assert expected[0] == pytest.approx(_gammapy_sum(*bins[:3], 0.8 * bins[3]), rel=1e-12)


@pytest.mark.parametrize(
    "n_on, n_off",
    [(0.0, 0.0), (0.0, 4.0), (5.0, 0.0), (3.0, 2.0), (1e4, 1.0), (1.0, 1e4)],
)
def test_wstat_terms_corners(n_on, n_off):
    """Element function vs gammapy per bin over the whole real line of mu_sig, kinks too."""
    alpha = 0.2
    s = np.concatenate([np.linspace(-50, 50, 201), [0.0, -alpha * n_off / (1 + alpha)]])
    s = np.concatenate([s, [alpha * n_on / (1 + alpha)], [-1e6, 1e6]])
    expected = wstat(np.full(s.size, n_on), np.full(s.size, n_off), alpha, s)
    values = np.array([element.wstat_terms(n_on, n_off, alpha, x) for x in s])
    np.testing.assert_allclose(2 * values[:, 0], expected, rtol=1e-11, atol=1e-9)
    vectorised = np.array(reference.wstat_terms(n_on, n_off, alpha, s)).T
    np.testing.assert_allclose(vectorised, values, rtol=1e-12, atol=1e-12)
    # derivatives: one-sided differences where the bin has a kink
    for x, (_, d1, d2) in zip(s[:201], values[:201], strict=True):
        eps = 1e-6
        right = wstat([n_on], [n_off], alpha, [x + eps])[0]
        left = wstat([n_on], [n_off], alpha, [x - eps])[0]
        centre = wstat([n_on], [n_off], alpha, [x])[0]
        slopes = ((right - centre) / eps / 2, (centre - left) / eps / 2)
        assert min(abs(d1 - slope) for slope in slopes) <= 1e-4 * max(1.0, abs(d1))
        assert d2 >= 0.0  # convex


@pytest.mark.parametrize("alpha", [0.0, np.inf, np.nan, -1.0])
def test_invalid_alpha_counts_zero_like_gammapy(backend, alpha):
    """gammapy's statistic is NaN for such bins and nan_to_num makes it 0."""
    n_on, n_off = np.array([3.0, 0.0, 2.0]), np.array([4.0, 2.0, 0.0])
    signal = np.array([1.0, 0.5, 2.0])
    alphas = np.full(3, alpha)
    with np.errstate(all="ignore"):
        expected = np.nan_to_num(wstat(n_on, n_off, alphas, 0.7 * signal))
    assert np.all(expected == 0.0)
    arrays = (backend.asarray(a) for a in (n_on, n_off, alphas, signal))
    assert backend.wstat_reduce(*arrays, 0.7) == (0.0, 0.0, 0.0)


#: Inputs near the floating-point underflow where a quotient divides by 0 (the first one
#: made numba raise ZeroDivisionError; gammapy's numpy gives inf/NaN there).
UNDERFLOW_CASES = [
    (5.2e-306, 0.0, 0.0833, 0.339, 3e-305),
    (5e-324, 0.0, 0.08, 1.0, 0.0),
    (5e-324, 5e-324, 0.08, 1.0, -1e-300),
    (0.0, 1e-300, 0.1, 1.0, -1e-170),
    (1e-320, 1e-320, 1e-3, 1e-320, 1e3),
]


@pytest.mark.parametrize("case", UNDERFLOW_CASES)
def test_underflow_inputs_never_raise(backend, case):
    """Finite inputs never raise on any backend; every backend gives NumPy's numbers."""
    *bins, norm = case
    arrays = [np.array([x]) for x in bins]
    got = backend.wstat_reduce(*(backend.asarray(a) for a in arrays), norm)
    with np.errstate(all="ignore"):
        expected = reference.wstat_reduce(None, *arrays, norm)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_underflow_case_is_gammapy_and_finite():
    """The reported case: value gammapy's (both ~1e-304, i.e. 0), a finite curvature
    (the true one, ~1e304: computed as a quotient of comparable numbers)."""
    *bins, norm = UNDERFLOW_CASES[0]
    arrays = [np.array([x]) for x in bins]
    stat, grad, hess = resolve_backend("numba").wstat_reduce(*arrays, norm)
    with np.errstate(all="ignore"):
        expected = _gammapy_sum(*arrays[:3], norm * arrays[3])
    assert stat == pytest.approx(expected, abs=1e-300)
    assert math.isfinite(grad) and math.isfinite(hess) and hess > 1e300
