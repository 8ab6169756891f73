"""rtafast.estimators.ExcessMapEstimator equals gammapy 2.1's within 1e-6 relative.

gammapy's estimator runs in each test on the same dataset. The array path (plain
``MapDataset``) is checked over energy groupings, selections, masks varying with
energy, models set on the dataset, and the exposure cache (hit, rescaled for a
longer live time, missed for a changed dataset); on/off datasets and datasets
without exposure run on arrays too (tests/test_excessmap_onoff.py has their details).
"""

import astropy.units as u
import numpy as np
import pytest
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.maps import Map, MapAxis, WcsGeom
from gammapy.modeling.models import ExpCutoffPowerLawSpectralModel, PowerLawSpectralModel

from rtafast.estimators import ExcessMapEstimator
from rtafast.estimators.convolution import convolve_images, tophat_kernel
from rtafast.estimators.excess_inputs import (
    ExcessInputCache,
    energy_grouping,
    resample_or,
    resample_sum,
)
from tests._excessmap_helpers import assert_same_maps, poisson_on_off

data = pytest.mark.data

SELECTION = ["errn-errp", "ul", "sensitivity"]
#: The 6 reconstructed-energy edges of the real-data fixtures (1-10 TeV): one group per bin.
EVERY_BIN = np.geomspace(1, 10, 7) * u.TeV


def _assert_same(result, reference):
    """Every map (tests/_excessmap_helpers.py) and the flux within 1e-6 relative."""
    np.testing.assert_allclose(result.flux.data, reference.flux.data, rtol=1e-6, atol=0)
    assert_same_maps(result, reference)


def _compare(dataset, cache=None, **kwargs):
    """rtafast's result (with ``cache``) and gammapy's, asserted equal; rtafast's returned."""
    reference = GammapyExcessMapEstimator(**kwargs).run(dataset)
    result = ExcessMapEstimator(cache=cache, **kwargs).run(dataset)
    _assert_same(result, reference)
    return result


def _separation_deg(dataset):
    geom = dataset.counts.geom.to_image()
    return geom.get_coord().skycoord.separation(geom.center_skydir).deg


def _energy_dependent_safe_mask(dataset):
    """A copy whose safe mask shrinks with energy threshold: low energies near the centre only.

    The image of the mask (its OR over energy) is unchanged.
    """
    copy = dataset.copy(name="mask-varies")
    separation = _separation_deg(dataset)
    copy.mask_safe.data[0] &= separation < 0.8
    copy.mask_safe.data[1] &= separation < 1.1
    copy.mask_safe.data[4] &= np.abs(separation - 0.6) > 0.1  # a ring off at one energy
    return copy


def _longer_live_time(dataset, factor, seed=2):
    """Same pointing and IRFs, ``factor`` times the live time (float32 maps, new counts)."""
    copy = dataset.copy(name="longer")
    copy.exposure.data = (copy.exposure.data * factor).astype(copy.exposure.data.dtype)
    for irf in (copy.psf, copy.edisp):
        if irf is not None and irf.exposure_map is not None:
            irf.exposure_map.data = irf.exposure_map.data * factor
    copy.background.data = copy.background.data * factor
    rng = np.random.default_rng(seed)
    copy.counts.data = rng.poisson(dataset.counts.data * factor).astype(dataset.counts.data.dtype)
    return copy


@data
@pytest.mark.parametrize("energy_edges", [None, [1, 3, 10] * u.TeV])
@pytest.mark.parametrize("fixture", ["hess_crab_stacked", "cta_1dc_gc"])
def test_excess_map_equals_gammapy(request, fixture, energy_edges):
    dataset = request.getfixturevalue(fixture)
    kwargs = dict(correlation_radius="0.1 deg", selection_optional=SELECTION)
    kwargs["energy_edges"] = energy_edges
    reference = GammapyExcessMapEstimator(**kwargs).run(dataset)
    result = ExcessMapEstimator(**kwargs).run(dataset)
    _assert_same(result, reference)
    assert np.nanmax(result["sqrt_ts"].data) > 5


@data
@pytest.mark.parametrize("sum_over_energy_groups", [False, True])
@pytest.mark.parametrize(
    "energy_edges", [None, [1, 3, 10] * u.TeV, [1.5, 2.2, 7] * u.TeV, EVERY_BIN, [1e3, 1e4] * u.GeV]
)
def test_energy_groupings(hess_crab_stacked, energy_edges, sum_over_energy_groups):
    cache = ExcessInputCache()
    result = _compare(
        hess_crab_stacked,
        cache=cache,
        correlation_radius="0.1 deg",
        energy_edges=energy_edges,
        sum_over_energy_groups=sum_over_energy_groups,
    )
    assert cache.misses == 1  # the array path ran
    n_groups = 1 if energy_edges is None else len(energy_edges) - 1
    assert result["ts"].data.shape == (n_groups, 125, 125)


@data
@pytest.mark.parametrize(
    "options",
    [
        dict(selection_optional=["errn-errp", "ul"]),
        dict(selection_optional="all", n_sigma=2, n_sigma_ul=3),
        dict(
            selection_optional=["sensitivity"],
            apply_threshold_sensitivity=True,
            gamma_min_sensitivity=5,
            n_sigma_sensitivity=4,
        ),
        dict(correlation_radius="0.25 deg", spectral_model=PowerLawSpectralModel(index=3.1)),
        dict(
            correlation_radius=0.05 * u.deg,
            spectral_model=ExpCutoffPowerLawSpectralModel(lambda_="0.2 TeV-1"),
            selection_optional=["ul"],
        ),
    ],
    ids=["errn-errp-ul", "all", "sensitivity-threshold", "radius-index", "ecpl-small-radius"],
)
@pytest.mark.parametrize("energy_edges", [None, EVERY_BIN])
def test_options(hess_crab_stacked, options, energy_edges):
    cache = ExcessInputCache()
    kwargs = dict(correlation_radius="0.1 deg", energy_edges=energy_edges) | options
    _compare(hess_crab_stacked, cache=cache, **kwargs)
    assert cache.misses == 1


@data
@pytest.mark.parametrize("energy_edges", [None, [1, 3, 10] * u.TeV, EVERY_BIN])
def test_safe_mask_varying_with_energy(hess_crab_stacked, energy_edges):
    dataset = _energy_dependent_safe_mask(hess_crab_stacked)
    result = _compare(
        dataset, cache=ExcessInputCache(), energy_edges=energy_edges, selection_optional=SELECTION
    )
    if energy_edges is EVERY_BIN:  # masked where the safe mask is off
        assert np.isnan(result["ts"].data[0][_separation_deg(dataset) > 0.9]).all()


@data
@pytest.mark.parametrize("energy_edges", [None, EVERY_BIN])
def test_fit_mask(hess_crab_stacked, energy_edges):
    dataset = _energy_dependent_safe_mask(hess_crab_stacked)
    fit = np.ones(dataset.counts.data.shape, dtype=bool)
    fit[2:, 50:70, 40:60] = False  # off at the higher energies only
    fit[:, :, :5] = False
    dataset.mask_fit = Map.from_geom(dataset.counts.geom, data=fit)
    _compare(dataset, cache=ExcessInputCache(), energy_edges=energy_edges)


@data
def test_models_on_dataset(hess_crab_stacked):
    from rtafast_devtools.reference_data import CRAB_POSITION, point_source_models

    dataset = hess_crab_stacked.copy(name="with-models")
    dataset.models = point_source_models(dataset, CRAB_POSITION, amplitude="3e-11 cm-2 s-1 TeV-1")
    cache = ExcessInputCache()
    with_models = _compare(dataset, cache=cache, selection_optional=["ul"])
    without = ExcessMapEstimator(cache=cache, selection_optional=["ul"]).run(hess_crab_stacked)
    assert cache.misses == 1 and cache.hits == 1  # the models do not change the exposure
    # the Crab is in the model: far less excess left at its position
    assert np.nanmax(with_models["sqrt_ts"].data) < np.nanmax(without["sqrt_ts"].data) - 5


def test_models_on_simulated_dataset(simulated):
    assert simulated.models is not None
    _compare(simulated, cache=ExcessInputCache(), correlation_radius="0.15 deg")


@data
def test_cache_reused_for_same_dataset(hess_crab_stacked):
    cache = ExcessInputCache()
    estimator = ExcessMapEstimator(cache=cache, selection_optional=SELECTION)
    first = estimator.run(hess_crab_stacked)
    second = estimator.run(hess_crab_stacked)
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 1, 0)
    for name in first.available_quantities:
        np.testing.assert_array_equal(first[name].data, second[name].data)


@data
@pytest.mark.parametrize("energy_edges", [None, EVERY_BIN])
@pytest.mark.parametrize("factor", [1.7, 31.3])
def test_cache_rescaled_for_longer_live_time(hess_crab_stacked, factor, energy_edges):
    cache = ExcessInputCache()
    kwargs = dict(energy_edges=energy_edges, selection_optional=SELECTION)
    first = _compare(hess_crab_stacked, cache=cache, **kwargs)
    longer = _longer_live_time(hess_crab_stacked, factor)
    result = _compare(longer, cache=cache, **kwargs)
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 1, 1)
    # a different map: the exposure was not reused as it was
    assert not np.allclose(result["norm_err"].data, first["norm_err"].data, equal_nan=True)


def _gradient_exposure(dataset):
    copy = dataset.copy(name="gradient")
    ny, nx = copy.exposure.data.shape[-2:]
    gradient = np.linspace(1.0, 1.5, nx, dtype=np.float32)[None, None, :]
    copy.exposure.data = copy.exposure.data * gradient
    return copy


def _other_edisp(dataset):
    copy = dataset.copy(name="edisp")
    edisp = copy.edisp.edisp_map.data
    copy.edisp.edisp_map.data = np.roll(edisp, 1, axis=2)  # reconstructed energies shifted
    return copy


def _one_mask_bin_off(dataset):
    """Safe mask off in the lowest energy bin of one pixel (same mask image)."""
    copy = dataset.copy(name="one-bin")
    copy.mask_safe.data[0, 60, 60] = False
    return copy


@data
@pytest.mark.parametrize(
    "change", [_gradient_exposure, _other_edisp, _energy_dependent_safe_mask, _one_mask_bin_off]
)
def test_cache_missed_for_changed_dataset(hess_crab_stacked, change):
    cache = ExcessInputCache()
    kwargs = dict(energy_edges=EVERY_BIN, selection_optional=["ul"])
    first = _compare(hess_crab_stacked, cache=cache, **kwargs)
    changed = change(hess_crab_stacked)
    result = _compare(changed, cache=cache, **kwargs)
    assert (cache.misses, cache.hits) == (2, 0)
    assert not np.array_equal(result["norm"].data, first["norm"].data, equal_nan=True)
    # both entries are kept and found again
    _compare(hess_crab_stacked, cache=cache, **kwargs)
    assert (cache.misses, cache.hits) == (2, 1)


@data
def test_cache_missed_for_other_options(hess_crab_stacked):
    cache = ExcessInputCache()
    _compare(hess_crab_stacked, cache=cache)
    _compare(hess_crab_stacked, cache=cache, spectral_model=PowerLawSpectralModel(index=3))
    _compare(hess_crab_stacked, cache=cache, correlation_radius="0.2 deg")
    _compare(hess_crab_stacked, cache=cache, energy_edges=[1, 3, 10] * u.TeV)
    assert (cache.misses, cache.hits) == (4, 0)
    _compare(hess_crab_stacked, cache=cache, spectral_model=PowerLawSpectralModel(index=3))
    assert (cache.misses, cache.hits) == (4, 1)


@data
def test_spectral_model_changed_in_place(hess_crab_stacked):
    cache = ExcessInputCache()
    estimator = ExcessMapEstimator(cache=cache)
    first = estimator.run(hess_crab_stacked)
    estimator.spectral_model.index.value = 2.7
    result = estimator.run(hess_crab_stacked)
    assert (cache.misses, cache.hits) == (2, 0)
    spectral_model = estimator.spectral_model
    reference = GammapyExcessMapEstimator(spectral_model=spectral_model).run(hess_crab_stacked)
    _assert_same(result, reference)
    assert result.reference_model.spectral_model is spectral_model
    assert not np.array_equal(result["norm"].data, first["norm"].data, equal_nan=True)


@data
@pytest.mark.parametrize("correlate_off", [True, False])
def test_on_off_dataset_li_ma(hess_crab_stacked, correlate_off):
    on_off = poisson_on_off(hess_crab_stacked)
    cache = ExcessInputCache()
    # (gammapy's WStat errn/errp/ul and sensitivity take minutes here: not selected)
    selection = ["alpha", "acceptance_on", "acceptance_off"]
    kwargs = dict(selection_optional=selection, correlate_off=correlate_off)
    result = _compare(on_off, cache=cache, **kwargs)
    assert cache.misses == 1  # the array path, its exposure cached
    assert "alpha" in result.available_quantities
    assert np.nanmax(result["sqrt_ts"].data) > 5


@data
def test_dataset_without_exposure(hess_crab_stacked):
    dataset = hess_crab_stacked.copy(name="no-exposure")
    dataset.exposure = None
    cache = ExcessInputCache()
    _compare(dataset, cache=cache, selection_optional=SELECTION)
    assert len(cache) == 0


def _random_map(edges, seed=0, dtype=np.float32):
    axis = MapAxis.from_energy_edges(edges * u.TeV)
    geom = WcsGeom.create(npix=(7, 5), binsz=0.1, axes=[axis])
    rng = np.random.default_rng(seed)
    return Map.from_geom(geom, data=rng.random(geom.data_shape).astype(dtype))


@pytest.mark.parametrize(
    "energy_edges", [None, [1, 3, 10] * u.TeV, [1.5, 2.2, 7] * u.TeV, [2, 4] * u.TeV]
)
def test_resample_equals_gammapy_resample_axis(energy_edges):
    counts = _random_map(np.geomspace(1, 10, 7))
    rng = np.random.default_rng(5)
    weights = Map.from_geom(counts.geom, data=rng.random(counts.data.shape) > 0.3)

    class _Dataset:  # what energy_grouping reads
        pass

    dataset = _Dataset()
    dataset.counts = counts
    estimator = ExcessMapEstimator(energy_edges=energy_edges, correlation_radius="0.25 deg")
    grouping = energy_grouping(estimator, dataset)
    axis = estimator._get_energy_axis(dataset)
    expected = counts.resample_axis(axis=axis, weights=weights)
    assert grouping.geom == expected.geom and grouping.shape == expected.data.shape
    np.testing.assert_array_equal(resample_sum(counts.data, weights.data, grouping), expected.data)
    np.testing.assert_array_equal(
        resample_sum(counts.data, None, grouping), counts.resample_axis(axis=axis).data
    )
    expected_or = weights.resample_axis(axis=axis, ufunc=np.logical_or)
    np.testing.assert_array_equal(resample_or(weights.data, grouping), expected_or.data)
    gammapy_kernel = GammapyExcessMapEstimator.estimate_kernel(estimator, dataset).data
    np.testing.assert_array_equal(grouping.kernel, gammapy_kernel)


def test_convolution_matches_scipy_direct():
    rng = np.random.default_rng(1)
    image = rng.poisson(2.0, size=(2, 30, 40)).astype(float)
    kernel = tophat_kernel(3.0)
    out = convolve_images(image, kernel)
    from scipy.signal import convolve

    direct = convolve(image[1], kernel, method="direct", mode="same")
    np.testing.assert_allclose(out[1], direct, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32 and out.shape == image.shape
