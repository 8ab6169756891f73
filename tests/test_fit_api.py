"""rtafast.Fit's drop-in behaviour, delegation and errors, on a simulated dataset.

These need no shared data (the dataset is simulated with the analytic CTA-like IRF),
so they run on a user's fresh machine too.
"""

import logging

import numpy as np
import pytest
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit
from gammapy.modeling.models import FoVBackgroundModel, Models

import rtafast
from rtafast.simulate import DEMO_POSITION, point_source_models


@pytest.fixture
def dataset(simulated):
    """A copy of the simulated dataset with fresh models (amplitude free)."""
    copy = simulated.copy(name="sim")
    copy.models = point_source_models(copy, DEMO_POSITION, amplitude="1e-12 cm-2 s-1 TeV-1")
    return copy


def _amplitude(dataset):
    return dataset.models["source"].spectral_model.amplitude


def test_fast_path_ran_not_gammapy(dataset, monkeypatch):
    """The fast path must not call gammapy's optimizer: make it explode and fit."""

    def forbidden(*args, **kwargs):
        raise AssertionError("gammapy's Fit was called")

    monkeypatch.setattr(GammapyFit, "run", forbidden)
    monkeypatch.setattr(GammapyFit, "optimize", forbidden)
    result = rtafast.Fit(array_backend="numba").run(dataset)
    assert result.fast_path
    assert result.array_backend == "numba"
    assert result.optimize_result.method == "newton"
    assert result.success and result.nfev > 0
    assert result.ts["source"] > 25


def test_matches_gammapy_on_simulation(dataset):
    reference = dataset.copy(name="ref")
    reference.models = point_source_models(
        reference, DEMO_POSITION, amplitude="1e-12 cm-2 s-1 TeV-1"
    )
    expected = GammapyFit(optimize_opts={"tol": 1e-5}).run(reference)
    result = rtafast.Fit().run(dataset)
    assert _amplitude(dataset).value == pytest.approx(_amplitude(reference).value, rel=1e-4)
    assert _amplitude(dataset).error == pytest.approx(_amplitude(reference).error, rel=1e-3)
    assert result.total_stat == pytest.approx(expected.total_stat, abs=1e-3)


def test_result_has_gammapy_fitresult_attributes(dataset):
    result = rtafast.Fit().run([dataset])  # a plain list, as gammapy accepts
    assert isinstance(result.parameters["amplitude"].value, float)
    assert result.models["source"].spectral_model.amplitude.value == _amplitude(dataset).value
    assert result.message == "converged"
    assert result.covariance_result.matrix.shape == (len(result.parameters),) * 2
    assert "rtafast array backend" in str(result)
    # the result's models are a copy, like gammapy's
    assert result.models["source"] is not dataset.models["source"]


@pytest.mark.parametrize("optimizer", ["minuit", "scipy"])
def test_gammapy_optimizer_name_accepted(dataset, optimizer):
    fit = rtafast.Fit(backend=optimizer)
    assert fit.backend == optimizer and fit.optimize_opts == {"backend": optimizer}
    result = fit.run(dataset)
    assert result.fast_path and result.backend == "rtafast"


def test_joint_fit_of_two_datasets_shares_the_amplitude(dataset, simulated):
    other = simulated.copy(name="sim-2")
    models = Models(dataset.models)
    models.append(FoVBackgroundModel(dataset_name="sim-2"))
    datasets = Datasets([dataset, other])
    datasets.models = models
    result = rtafast.Fit().run(datasets)
    assert result.fast_path
    single = dataset.copy(name="single")
    single.models = point_source_models(single, DEMO_POSITION)
    rtafast.Fit().run(single)
    # same data twice: same amplitude, error smaller by sqrt(2)
    assert _amplitude(dataset).value == pytest.approx(_amplitude(single).value, rel=1e-9)
    assert _amplitude(dataset).error == pytest.approx(
        _amplitude(single).error / np.sqrt(2), rel=1e-9
    )


def test_non_linear_parameter_is_delegated_to_gammapy(dataset, caplog):
    dataset.models["source"].spectral_model.index.frozen = False
    with caplog.at_level(logging.INFO, logger="rtafast.dispatch"):
        result = rtafast.Fit().run(dataset)
    assert result.array_backend == "gammapy" and not result.fast_path
    assert "delegates to gammapy" in caplog.text and "'index'" in caplog.text
    assert result.success


def test_non_linear_parameter_error_when_delegation_disabled(dataset):
    dataset.models["source"].spatial_model.lon_0.frozen = False
    with pytest.raises(rtafast.NonLinearParameterError, match="'lon_0' of model 'source'"):
        rtafast.Fit(delegate=False).run(dataset)


def test_no_free_parameter(dataset):
    _amplitude(dataset).frozen = True
    with pytest.raises(ValueError, match="No free parameters"):
        rtafast.Fit().run(dataset)


def test_no_counts_in_mask(dataset):
    dataset.counts.data[...] = 0
    with pytest.raises(ValueError, match="no counts in the fit mask of dataset.*'sim'"):
        rtafast.Fit().run(dataset)


def test_empty_mask(dataset):
    dataset.mask_safe.data[...] = False
    with pytest.raises(ValueError, match="selects no bin"):
        rtafast.Fit().run(dataset)


@pytest.mark.parametrize("label", ["counts", "background"])
def test_nan_inside_mask(dataset, label):
    getattr(dataset, label).data[0, 5, 5] = np.nan
    dataset.mask_safe.data[0, 5, 5] = True
    with pytest.raises(ValueError, match=f"dataset 'sim': {label} has 1 NaN"):
        rtafast.Fit().run(dataset)


def test_nan_outside_mask_is_fine(dataset):
    dataset.counts.data[0, 5, 5] = np.nan
    dataset.mask_safe.data[0, 5, 5] = False
    assert rtafast.Fit().run(dataset).success


def test_mismatched_geometries(dataset):
    from gammapy.maps import Map

    small = dataset.background.geom.downsample(2)
    dataset.background = Map.from_geom(small, data=np.ones(small.data_shape))
    with pytest.raises(ValueError, match="background map has shape .* but counts has"):
        rtafast.Fit().run(dataset)


def test_source_predicting_nothing_is_undetermined(dataset):
    spatial = dataset.models["source"].spatial_model
    spatial.lat_0.value = spatial.lat_0.value + 20  # far outside the map
    with pytest.raises(ValueError, match="predict no counts inside the fit mask"):
        rtafast.Fit().run(dataset)
