"""Excess map: rtafast.estimators.ExcessMapEstimator against gammapy's, same data, same run.

The 4-run H.E.S.S. Crab map, correlation radius 0.1 deg. rtafast caches the
kernel-averaged exposure per IRF content (``ExcessInputCache``), so two rows side by
side:

* ``warm``: a repeat on the same dataset, its exposure in the estimator's cache (the
  next window of a stream finds it too, rescaled by live time);
* ``cold``: the first map of a new dataset (a fresh copy every round, made outside the
  timing) with an empty ``ExcessInputCache``: the exposure is computed as gammapy does.

gammapy's ``ExcessMapEstimator.run`` keeps nothing between calls. Each result equals
gammapy's within 1e-6 relative.
"""

import numpy as np
import pytest
from bench_settings import rounds
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator

from rtafast.estimators import ExcessMapEstimator
from rtafast.estimators.excess_inputs import ExcessInputCache

SIZE = "crab 125x125x6, r=0.1 deg"
RADIUS = "0.1 deg"
ROUNDS = dict(rounds=rounds(10), warmup_rounds=1, iterations=1)
LABELS = {
    "warm": "numpy warm: repeat on the same dataset, exposure cached",
    "cold": "numpy cold: first map of a new dataset, empty ExcessInputCache",
}


def test_gammapy_excess(benchmark, record, hess_crab_stacked):
    record("excess map", SIZE, "gammapy")
    estimator = GammapyExcessMapEstimator(correlation_radius=RADIUS)
    result = benchmark.pedantic(estimator.run, args=(hess_crab_stacked,), **ROUNDS)
    assert np.nanmax(result["sqrt_ts"].data) > 5


@pytest.mark.parametrize("start", list(LABELS))
def test_rtafast_excess(benchmark, record, hess_crab_stacked, start):
    record("excess map", SIZE, "rtafast", LABELS[start])
    reference = GammapyExcessMapEstimator(correlation_radius=RADIUS).run(hess_crab_stacked)
    ExcessMapEstimator(correlation_radius=RADIUS, cache=ExcessInputCache()).run(
        hess_crab_stacked.copy()
    )  # imports and first-use costs of the code paths, not of the timed inputs
    caches = []

    def setup():
        cache = ExcessInputCache()
        if start == "warm":
            estimator = ExcessMapEstimator(correlation_radius=RADIUS, cache=cache)
            estimator.run(hess_crab_stacked)
            caches.append(cache)
            return (estimator, hess_crab_stacked), {}
        caches.append(cache)
        dataset = hess_crab_stacked.copy(name=f"new-{len(caches)}")
        return (ExcessMapEstimator(correlation_radius=RADIUS, cache=cache), dataset), {}

    def run(estimator, dataset):
        return estimator.run(dataset)

    result = benchmark.pedantic(run, setup=setup, **ROUNDS)
    for name in ("ts", "norm", "norm_err", "npred_excess"):
        np.testing.assert_allclose(result[name].data, reference[name].data, rtol=1e-6)
    # what each timed call found in its cache: warm, one hit; cold, one miss
    expected = (1, 1) if start == "warm" else (0, 1)
    assert all((c.hits, c.misses) == expected for c in caches), [(c.hits, c.misses) for c in caches]
