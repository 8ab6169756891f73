"""Bin classification (counted / empty / untouched bins) and the empty-bin shortcut."""

import dataclasses

import numpy as np
import pytest

import rtafast_kernels as rk
from rtafast_kernels.cash.prepare import prepare_numba, prepare_numpy


def _inputs(seed=0, n=20000, k=2):
    rng = np.random.default_rng(seed)
    fixed = rng.uniform(0, 0.3, n)
    templates = np.zeros((k, n))
    templates[0, : n // 4] = rng.uniform(0, 1, n // 4)
    templates[0, n // 4 : n // 4 + 50] = -1e-9  # tiny negative PSF-convolution noise
    templates[1:, n // 2 :] = rng.uniform(0, 0.5, (k - 1, n - n // 2))
    counts = rng.poisson(fixed + templates.clip(0).sum(axis=0)).astype(float)
    return counts, fixed, templates


def test_numba_classification_equals_numpy_reference():
    counts, fixed, templates = _inputs()
    reference = prepare_numpy(counts, fixed, templates)
    result = prepare_numba(counts, fixed, templates)
    for field in dataclasses.fields(reference):
        np.testing.assert_allclose(
            getattr(result, field.name),
            getattr(reference, field.name),
            rtol=1e-12,
            err_msg=field.name,
        )


def test_shortcut_statistic_equals_full_sum(backend):
    counts, fixed, templates = _inputs(1, n=3000)
    problem = rk.CashProblem(counts, fixed, templates, backend=backend)
    assert problem.n_counted < problem.n_active < problem.n_bins
    for norms in ([1.0, 1.0], [0.0, 0.0], [2.5, 0.3], [-0.01, 1.0]):
        full = rk.cash_sum(counts, fixed + np.asarray(norms) @ templates, backend="numpy")
        assert problem.stat(norms) == pytest.approx(full, rel=1e-12), norms


def test_exact_path_when_empty_bins_reach_truncation(backend):
    """Norms that drive empty bins' predictions negative: gammapy truncates them."""
    counts, fixed, templates = _inputs(2, n=3000)
    problem = rk.CashProblem(counts, fixed, templates, backend=backend)
    norms = np.array([-5.0, 1.0])
    assert not problem._linear_is_exact(norms)
    full = rk.cash_sum(counts, fixed + norms @ templates, backend="numpy")
    assert problem.stat(norms) == pytest.approx(full, rel=1e-12)
    # and the gradient: empty bins at the truncation value no longer depend on the norms
    eps = 1e-7
    numeric = (problem.stat(norms + [eps, 0]) - problem.stat(norms - [eps, 0])) / (2 * eps)
    assert problem.reduce(norms)[1][0] == pytest.approx(numeric, rel=1e-5)
