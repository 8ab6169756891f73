"""rtafast.Fit is gammapy's Fit: constructor, attributes and methods, fast where it can be.

gammapy's own test module (tests/conformance) covers the delegated fits; these check
the methods gammapy's tests cannot reach on the fast path (a MapDataset with linear
norms), against gammapy's Fit on the same simulated dataset.
"""

import numpy as np
import pytest
from gammapy.modeling import Fit as GammapyFit

import rtafast
from rtafast import dispatch
from rtafast.simulate import DEMO_POSITION, point_source_models


@pytest.fixture
def dataset(simulated):
    """Amplitude and background norm free (two linear norms)."""
    copy = simulated.copy(name="sim")
    copy.models = point_source_models(
        copy, DEMO_POSITION, amplitude="1e-12 cm-2 s-1 TeV-1", background_norm_free=True
    )
    return copy


def _amplitude(dataset):
    return dataset.models["source"].spectral_model.amplitude


def _fresh(dataset):
    copy = dataset.copy(name=dataset.name)
    copy.models = dataset.models.copy()
    return copy


def test_constructor_and_attributes_are_gammapys():
    options = {"backend": "scipy", "method": "L-BFGS-B"}
    mine = rtafast.Fit("scipy", optimize_opts=options, store_trace=True)
    theirs = GammapyFit("scipy", optimize_opts=options, store_trace=True)
    assert isinstance(mine, GammapyFit)
    for name in ("backend", "optimize_opts", "covariance_opts", "confidence_opts", "store_trace"):
        assert getattr(mine, name) == getattr(theirs, name), name
    assert mine._minuit is None
    assert rtafast.Fit(array_backend="numpy").array_backend == "numpy"


def test_bad_array_backend_fails_at_construction():
    with pytest.raises(ValueError, match="bogus"):
        rtafast.Fit(array_backend="bogus")


def test_optimize_runs_the_kernel_and_matches_gammapy(dataset):
    reference = _fresh(dataset)
    dispatch.reset()
    result = rtafast.Fit().optimize(dataset)
    assert dispatch.counts() == {("Fit.optimize", "fast", None): 1}
    expected = GammapyFit(optimize_opts={"tol": 1e-6}).optimize(reference)
    assert result.success and result.backend == "rtafast"
    assert result.total_stat == pytest.approx(expected.total_stat, abs=1e-4)
    assert _amplitude(dataset).value == pytest.approx(_amplitude(reference).value, rel=1e-4)


def test_run_counts_one_call_and_sets_the_covariance(dataset):
    dispatch.reset()
    result = rtafast.Fit().run(dataset)
    assert dispatch.counts() == {("Fit.run", "fast", None): 1}
    assert result.covariance_result.success
    assert _amplitude(dataset).error > 0
    assert result.models.covariance.data.shape == (len(result.models.parameters),) * 2


@pytest.mark.parametrize("reoptimize", [False, True])
def test_stat_profile_matches_gammapy(dataset, reoptimize):
    """gammapy's stat_profile on rtafast's Fit (re-optimising by Newton) equals gammapy's."""
    rtafast.Fit().run(dataset)
    reference = _fresh(dataset)
    values = _amplitude(dataset).value * np.array([0.8, 0.9, 1.0, 1.1, 1.2])
    _amplitude(dataset).scan_values = values
    _amplitude(reference).scan_values = values
    dispatch.reset()
    mine = rtafast.Fit().stat_profile(dataset, "amplitude", reoptimize=reoptimize)
    fast_calls = dispatch.counts().get(("Fit.optimize", "fast", None), 0)
    assert fast_calls == (len(values) if reoptimize else 0)
    theirs = GammapyFit(optimize_opts={"tol": 1e-6}).stat_profile(
        reference, "amplitude", reoptimize=reoptimize
    )
    np.testing.assert_allclose(mine["stat_scan"], theirs["stat_scan"], atol=1e-3)
    # the profile leaves the parameters where they were, as gammapy's does
    assert _amplitude(dataset).value == pytest.approx(values[2], rel=1e-12)


def test_confidence_is_gammapys_on_the_fitted_models(dataset):
    fit = rtafast.Fit()
    fit.run(dataset)
    reference = _fresh(dataset)
    mine = fit.confidence(dataset, "amplitude", sigma=1)
    theirs = GammapyFit().confidence(reference, "amplitude", sigma=1)
    assert mine["success"] and theirs["success"]
    assert mine["errp"] == pytest.approx(theirs["errp"], rel=1e-3)
    assert mine["errn"] == pytest.approx(theirs["errn"], rel=1e-3)


def test_store_trace_is_delegated_with_its_reason(dataset):
    dispatch.reset()
    result = rtafast.Fit(store_trace=True).run(dataset)
    assert dispatch.counts() == {("Fit.run", "gammapy", "store-trace"): 1}
    assert result.array_backend == "gammapy" and len(result.trace) > 0
