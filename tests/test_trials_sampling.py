"""The trials' Poisson sampler: total-then-bins draws are independent Poisson counts."""

import numpy as np
import pytest
from scipy import stats

from rtafast.trials.sampling import SPARSE_MEAN_PER_BIN, PoissonSampler

MEANS = np.array([0.0, 0.01, 0.002, 0.05, 0.0, 0.03, 0.1, 0.0005] * 4)


@pytest.mark.parametrize("scale", [None, "rows"])
def test_sparse_draws_are_independent_poisson(scale):
    sampler = PoissonSampler(MEANS)
    assert sampler.sparse and sampler.total < SPARSE_MEAN_PER_BIN * MEANS.size
    n = 200_000
    factors = np.full(n, 3.0) if scale else None
    counts = sampler.add_to(np.random.default_rng(1), np.zeros((n, MEANS.size)), factors)
    expected = MEANS * (3.0 if scale else 1.0)
    # each bin: mean and variance of a Poisson (5 sigma of the estimates)
    error = np.sqrt(expected / n) + 1e-12
    assert np.all(np.abs(counts.mean(axis=0) - expected) < 5 * error)
    assert np.all(counts[:, MEANS == 0] == 0)
    busiest = np.argmax(MEANS)
    assert counts[:, busiest].var() == pytest.approx(expected[busiest], rel=0.02)
    # independent bins: no correlation between the two busiest
    second = np.argsort(MEANS)[-2]
    r = np.corrcoef(counts[:, busiest], counts[:, second])[0, 1]
    assert abs(r) < 5 / np.sqrt(n)
    # the row totals are Poisson of the summed mean (chi2 of the count frequencies)
    totals = counts.sum(axis=1).astype(int)
    k = np.arange(6)
    observed = np.array([np.sum(totals == i) for i in k[:-1]] + [np.sum(totals >= 5)])
    mu = expected.sum()
    probability = np.append(stats.poisson.pmf(k[:-1], mu), stats.poisson.sf(4, mu))
    keep = probability * n > 5
    chi2 = np.sum((observed[keep] - n * probability[keep]) ** 2 / (n * probability[keep]))
    assert stats.chi2(keep.sum() - 1).sf(chi2) > 1e-3


def test_dense_means_are_drawn_bin_by_bin_and_scaled():
    means = np.array([2.0, 0.5, 3.0])
    sampler = PoissonSampler(means)
    assert not sampler.sparse
    counts = sampler.add_to(np.random.default_rng(2), np.zeros((50_000, 3)), np.full(50_000, 2))
    assert counts.mean(axis=0) == pytest.approx(2 * means, rel=0.02)


def test_zero_scales_and_bad_means():
    sampler = PoissonSampler(MEANS)
    out = np.zeros((4, MEANS.size))
    assert not sampler.add_to(np.random.default_rng(0), out, np.zeros(4)).any()
    for bad in ([], [1.0, -1.0], [np.nan]):
        with pytest.raises(ValueError, match="Poisson means"):
            PoissonSampler(np.array(bad, float))
