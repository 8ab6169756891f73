"""rtafast's ExcessMapEstimator on arrays for on/off datasets and datasets without exposure.

Every output map is compared with gammapy 2.1's ``ExcessMapEstimator`` run on the same
input, **bit for bit** (same values, NaN pattern, dtype, unit and geometry) whenever
the reconstructed-energy exposure is computed (a cache miss) or there is none; a
cache entry rescaled for a longer live time agrees within float32 rounding (1e-6
relative). Each comparison also checks that `rtafast.dispatch` recorded the fast
path (and no delegation).

Inputs: small simulated ``MapDatasetOnOff`` (the analytic CTA-like IRFs of
`rtafast.simulate`, ``MapDatasetOnOff.from_map_dataset``: exposure, PSF, EDisp)
with off acceptances varying per bin (and 0 in places), safe masks varying with
energy, fit masks, models, energy groupings, every optional selection; datasets
without exposure; and, with the shared data, gammapy's own test images
(``tests/unbundled``) and an on/off version of the H.E.S.S. Crab stack.
"""

import warnings
from collections import Counter

import astropy.units as u
import numpy as np
import pytest
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.maps import Map, MapAxis
from gammapy.modeling.models import (
    GaussianSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)

from rtafast import dispatch
from rtafast.estimators import ExcessMapEstimator
from rtafast.estimators.excess_inputs import ExcessInputCache
from rtafast.simulate import simulate_dataset
from tests._excessmap_helpers import assert_same_maps, poisson_on_off

data = pytest.mark.data

ON_OFF_KEYS = ["alpha", "acceptance_on", "acceptance_off"]
#: The reconstructed-energy edges of the simulated datasets (1-10 TeV, 3 bins): one group each.
EVERY_BIN = np.geomspace(1, 10, 4) * u.TeV
ENTRY = "ExcessMapEstimator.run"


@pytest.fixture(autouse=True)
def _quiet():
    """gammapy's (and so rtafast's) statistics warn on empty or masked bins: not errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _fast_calls(before):
    now = Counter(dispatch.counts())
    now.subtract(before)
    return +now


def _compare(dataset, cache=None, exact=True, **kwargs):
    """rtafast's result and gammapy's on ``dataset``, asserted equal; rtafast's returned.

    Also asserts that the call took rtafast's array path.
    """
    reference = GammapyExcessMapEstimator(**kwargs).run(dataset)
    before = Counter(dispatch.counts())
    result = ExcessMapEstimator(cache=ExcessInputCache() if cache is None else cache, **kwargs).run(
        dataset
    )
    assert _fast_calls(before) == Counter({(ENTRY, dispatch.FAST, None): 1})
    assert_same_maps(result, reference, exact=exact)
    return result


def _base(width_deg=0.5, n_energy=3, seed=1):
    return simulate_dataset(
        width_deg=width_deg,
        binsz_deg=0.05,
        n_energy=n_energy,
        amplitude="2e-11 cm-2 s-1 TeV-1",
        random_state=seed,
    )


def _on_off(dataset, seed=0, name="on-off", scalar_acceptance=False):
    """A ``MapDatasetOnOff`` of ``dataset``: off counts drawn from its background.

    The off acceptance varies per bin, and is 0 in a few (no off measurement there).
    """
    rng = np.random.default_rng(seed)
    geom = dataset.counts.geom
    shape = geom.data_shape
    if scalar_acceptance:
        acceptance, acceptance_off = 1, 5
        expected_off = dataset.background.data * 5
    else:
        acceptance = Map.from_geom(geom, data=rng.uniform(0.8, 1.2, shape).astype(np.float32))
        off = rng.uniform(3, 6, shape).astype(np.float32)
        off[:, 1:3, 1:3] = 0
        off[-1, -3:, :2] = 0
        acceptance_off = Map.from_geom(geom, data=off)
        expected_off = dataset.background.data * off / acceptance.data
    counts_off = Map.from_geom(geom, data=rng.poisson(expected_off).astype(np.float32))
    on_off = MapDatasetOnOff.from_map_dataset(
        dataset,
        acceptance=acceptance,
        acceptance_off=acceptance_off,
        counts_off=counts_off,
        name=name,
    )
    on_off.models = None
    return on_off


def _source_model(dataset):
    center = dataset.counts.geom.center_skydir
    return SkyModel(
        PowerLawSpectralModel(amplitude="1e-11 cm-2 s-1 TeV-1", index=2.4),
        GaussianSpatialModel(lon_0=center.ra, lat_0=center.dec, sigma="0.08 deg", frame="icrs"),
        name="source-model",
    )


def _energy_dependent_masks(dataset, fit_mask=True):
    """Safe mask shrinking with energy threshold; fit mask off in a band at high energy."""
    copy = dataset.copy(name=f"{dataset.name}-masks")
    shape = copy.counts.data.shape
    safe = np.ones(shape, dtype=bool)
    safe[0, :3, :] = False
    safe[1, :, :2] = False
    copy.mask_safe = Map.from_geom(copy.counts.geom, data=safe)
    if fit_mask:
        fit = np.ones(shape, dtype=bool)
        fit[1:, 4:6, 3:8] = False
        fit[:, :, -1] = False
        copy.mask_fit = Map.from_geom(copy.counts.geom, data=fit)
    return copy


@pytest.fixture(scope="module")
def base():
    """10 x 10 pixels, 3 reconstructed energies (1-10 TeV), IRFs and a bright source."""
    return _base()


@pytest.fixture(scope="module")
def on_off(base):
    return _on_off(base)


# (gammapy's WStat errn/errp/ul/sensitivity search roots pixel by pixel, in both: small maps)
@pytest.mark.parametrize("correlate_off", [True, False])
@pytest.mark.parametrize(
    "grouping",
    [
        dict(),
        dict(energy_edges=[1, 3, 10] * u.TeV),
        dict(energy_edges=EVERY_BIN),
    ],
    ids=["one-group", "two-groups", "every-bin"],
)
def test_on_off_all_selections(on_off, correlate_off, grouping):
    cache = ExcessInputCache()
    result = _compare(
        on_off,
        cache=cache,
        selection_optional="all",
        correlate_off=correlate_off,
        correlation_radius="0.12 deg",
        **grouping,
    )
    assert cache.misses == 1  # the exposure was computed on the array path
    assert set(ON_OFF_KEYS) < set(result.available_quantities)
    assert np.nanmax(result["sqrt_ts"].data) > 5
    # the bins without off measurement are there (alpha not finite, or no statistics)
    assert not np.isfinite(result["acceptance_off"].data).all()


@pytest.mark.parametrize("correlate_off", [True, False])
@pytest.mark.parametrize("energy_edges", [None, [1, 3, 10] * u.TeV, EVERY_BIN])
@pytest.mark.parametrize("fit_mask", [False, True])
def test_on_off_masks(on_off, correlate_off, energy_edges, fit_mask):
    dataset = _energy_dependent_masks(on_off, fit_mask=fit_mask)
    result = _compare(
        dataset,
        selection_optional=["ul", "alpha", "acceptance_on"],
        correlate_off=correlate_off,
        energy_edges=energy_edges,
    )
    if energy_edges is EVERY_BIN:  # NaN where the safe mask is off
        assert np.isnan(result["ts"].data[0, :3]).all()
        assert np.isnan(result["alpha"].data[1, :, :2]).all()


@pytest.mark.parametrize("correlate_off", [True, False])
@pytest.mark.parametrize("energy_edges", [None, EVERY_BIN])
def test_on_off_model(on_off, correlate_off, energy_edges):
    dataset = _energy_dependent_masks(on_off)
    dataset.models = [_source_model(dataset)]
    # (the errors' root search with the model's signal: on one group)
    selection = ["errn-errp", "alpha"] if energy_edges is None else ["alpha", "acceptance_on"]
    kwargs = dict(
        selection_optional=selection,
        correlate_off=correlate_off,
        energy_edges=energy_edges,
    )
    with_model = _compare(dataset, **kwargs)
    dataset.models = None
    without = _compare(dataset, **kwargs)
    # the model's signal is taken out of the excess
    assert np.nansum(with_model["npred_excess"].data) < np.nansum(without["npred_excess"].data)


@pytest.mark.parametrize("correlate_off", [True, False])
def test_on_off_scalar_acceptances(base, correlate_off):
    # from_map_dataset with numbers: integer acceptance maps
    dataset = _on_off(base, seed=4, name="scalar", scalar_acceptance=True)
    assert dataset.acceptance.data.dtype.kind == "i"
    _compare(dataset, selection_optional=ON_OFF_KEYS + ["ul"], correlate_off=correlate_off)


@pytest.mark.parametrize(
    "options",
    [
        dict(
            selection_optional=["sensitivity"],
            apply_threshold_sensitivity=True,
            gamma_min_sensitivity=20,
            bkg_syst_fraction_sensitivity=0.3,
            n_sigma_sensitivity=3,
        ),
        dict(selection_optional=["errn-errp", "ul"], n_sigma=2, n_sigma_ul=3),
        dict(
            correlation_radius=0.2 * u.deg,
            spectral_model=PowerLawSpectralModel(index=3.2),
            selection_optional=["acceptance_off"],
        ),
    ],
    ids=["sensitivity-threshold", "n-sigma", "radius-spectrum"],
)
@pytest.mark.parametrize("correlate_off", [True, False])
def test_on_off_options(on_off, options, correlate_off):
    _compare(on_off, correlate_off=correlate_off, energy_edges=[1, 2, 10] * u.TeV, **options)


@pytest.mark.parametrize("correlate_off", [True, False])
@pytest.mark.parametrize("energy_edges", [None, EVERY_BIN])
def test_on_off_without_exposure(on_off, correlate_off, energy_edges):
    dataset = _energy_dependent_masks(on_off)
    dataset.exposure = None
    cache = ExcessInputCache()
    selection = "all" if energy_edges is None else ["sensitivity"] + ON_OFF_KEYS
    result = _compare(
        dataset,
        cache=cache,
        selection_optional=selection,
        correlate_off=correlate_off,
        energy_edges=energy_edges,
    )
    assert len(cache) == 0
    # gammapy's norm is then the excess itself (float64)
    excess = result["npred_excess"].data
    np.testing.assert_array_equal(result["norm"].data, excess.astype(np.float64))
    assert result["norm"].unit == u.dimensionless_unscaled


@pytest.mark.parametrize("energy_edges", [None, [1, 3, 10] * u.TeV, EVERY_BIN])
def test_map_dataset_without_exposure(base, energy_edges):
    dataset = _energy_dependent_masks(base)
    dataset.models = None
    dataset.exposure = None
    cache = ExcessInputCache()
    selection = "all" if energy_edges is None else ["errn-errp"]
    result = _compare(dataset, cache=cache, selection_optional=selection, energy_edges=energy_edges)
    assert len(cache) == 0
    assert result["norm"].data.dtype == np.float64
    # the threshold sensitivity reads the resampled background (npred)
    _compare(
        dataset,
        selection_optional=["sensitivity"],
        apply_threshold_sensitivity=True,
        gamma_min_sensitivity=30,
        energy_edges=energy_edges,
    )


def test_counts_and_background_only():
    """gammapy's ``test_compute_lima_image`` setup: counts and background, no IRF."""
    rng = np.random.default_rng(7)
    axis = MapAxis.from_energy_bounds("1 GeV", "100 GeV", nbin=1)
    geom = _base().counts.geom.to_image().to_cube([axis])
    background = Map.from_geom(geom, data=np.full(geom.data_shape, 3.0, dtype=np.float32))
    counts = Map.from_geom(geom, data=rng.poisson(3.3, geom.data_shape).astype(np.int32))
    dataset = MapDataset(counts=counts, background=background)
    _compare(dataset, selection_optional=["errn-errp", "ul", "sensitivity"])


def test_on_off_cache_reused_and_rescaled(base):
    cache = ExcessInputCache()
    kwargs = dict(selection_optional=["alpha"], energy_edges=[1, 3, 10] * u.TeV)
    dataset = _on_off(base, name="first")
    first = _compare(dataset, cache=cache, **kwargs)
    again = ExcessMapEstimator(cache=cache, **kwargs).run(dataset)
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 1, 0)
    for name in first.available_quantities:
        np.testing.assert_array_equal(first[name].data, again[name].data, name)
    # same pointing, 2.5 times the live time: the cached exposure is rescaled
    longer = base.copy(name="longer")
    longer.exposure.data = longer.exposure.data * 2.5
    for irf in (longer.psf, longer.edisp):
        if irf is not None and irf.exposure_map is not None:
            irf.exposure_map.data = irf.exposure_map.data * 2.5
    longer.background.data = longer.background.data * 2.5
    longer.counts.data = np.random.default_rng(3).poisson(base.counts.data * 2.5).astype(float)
    result = _compare(_on_off(longer, seed=5, name="longer"), cache=cache, exact=False, **kwargs)
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 2, 1)
    assert not np.allclose(result["norm"].data, first["norm"].data, equal_nan=True)


def test_delegated_when_the_fast_path_cannot_apply(on_off):
    # acceptances with a unit: gammapy's own run (and errors: alpha needs a dimensionless
    # ratio, the correlated background compares acceptance_off with a number)
    dataset = on_off.copy(name="with-units")
    dataset.acceptance = Map.from_geom(dataset.counts.geom, data=on_off.acceptance.data, unit="s")
    dataset.acceptance_off = Map.from_geom(
        dataset.counts.geom, data=on_off.acceptance_off.data, unit="s"
    )
    before = Counter(dispatch.counts())
    result = ExcessMapEstimator(correlate_off=False).run(dataset)
    reference = GammapyExcessMapEstimator(correlate_off=False).run(dataset)
    assert_same_maps(result, reference, exact=True)
    assert _fast_calls(before) == Counter({(ENTRY, dispatch.GAMMAPY, "unsupported-dataset"): 1})
    # no off counts: gammapy's error
    dataset = on_off.copy(name="no-off")
    dataset.counts_off = None
    with pytest.raises(AttributeError):
        ExcessMapEstimator().run(dataset)


# ---- shared data: gammapy's test images and an on/off H.E.S.S. Crab stack ----


def _image_to_cube(image, energy_min, energy_max):
    axis = MapAxis.from_energy_bounds(energy_min, energy_max, nbin=1)
    geom = image.geom.to_cube([axis])
    return Map.from_geom(geom, data=image.data[np.newaxis, :, :])


@data
@pytest.mark.parametrize("correlate_off", [True, False])
def test_hess_survey_snippet(data_dir, correlate_off):
    """gammapy's ``test_compute_lima_on_off_image`` input (250 x 250, big-endian float32)."""
    filename = data_dir / "tests/unbundled/hess/survey/hess_survey_snippet.fits.gz"
    maps = {}
    for key, hdu in [
        ("counts", "ON"),
        ("counts_off", "OFF"),
        ("acceptance", "ONEXPOSURE"),
        ("acceptance_off", "OFFEXPOSURE"),
    ]:
        maps[key] = _image_to_cube(Map.read(filename, hdu=hdu), "1 TeV", "100 TeV")
    dataset = MapDatasetOnOff(**maps)
    result = _compare(
        dataset,
        correlation_radius="0.1 deg",
        correlate_off=correlate_off,
        selection_optional=ON_OFF_KEYS,
    )
    assert np.nanmax(result["sqrt_ts"].data) > 4  # (less without correlate_off)


@data
def test_poisson_stats_image(data_dir):
    """gammapy's ``test_compute_lima_image`` input: counts and background, no exposure."""
    filename = data_dir / "tests/unbundled/poisson_stats_image/input_all.fits.gz"
    counts = _image_to_cube(Map.read(filename, hdu="counts"), "1 GeV", "100 GeV")
    background = _image_to_cube(Map.read(filename, hdu="background"), "1 GeV", "100 GeV")
    result = _compare(
        MapDataset(counts=counts, background=background), correlation_radius="0.1 deg"
    )
    np.testing.assert_allclose(result["sqrt_ts"].data[0, 100, 100], 30.814916, atol=1e-3)


@data
@pytest.mark.parametrize("correlate_off", [True, False])
def test_hess_crab_on_off(hess_crab_stacked, correlate_off):
    on_off = poisson_on_off(hess_crab_stacked, name="crab-on-off")
    cache = ExcessInputCache()
    for energy_edges in (None, [1, 3, 10] * u.TeV):
        result = _compare(
            on_off,
            cache=cache,
            selection_optional=ON_OFF_KEYS,
            correlate_off=correlate_off,
            energy_edges=energy_edges,
        )
        assert np.nanmax(result["sqrt_ts"].data) > 4  # (less without correlate_off)
    assert cache.misses == 2


@pytest.mark.parametrize(
    "edges, energy_edges, single_start",
    [
        (np.geomspace(1, 10, 7), np.geomspace(1, 10, 7) * u.TeV, 0),  # every bin
        (np.geomspace(1, 10, 7), np.geomspace(1, 10, 7)[2:5] * u.TeV, 2),  # some bins
        (np.geomspace(1, 10, 2), None, 0),  # one bin, squashed: itself
        (np.geomspace(1, 10, 7), [1, 3, 10] * u.TeV, None),  # groups of several bins
    ],
)
def test_resample_single_bin_groups_equal_gammapy(edges, energy_edges, single_start):
    """Groups of one bin each take a shortcut (no ``reduceat``): same arrays as gammapy's."""
    from rtafast.estimators.excess_inputs import energy_grouping, resample_or, resample_sum

    axis = MapAxis.from_energy_edges(edges * u.TeV)
    geom = _base().counts.geom.to_image().to_cube([axis])
    rng = np.random.default_rng(2)
    counts = Map.from_geom(geom, data=rng.random(geom.data_shape).astype(">f4"))
    weights = Map.from_geom(geom, data=rng.random(geom.data_shape) > 0.3)
    dataset = MapDataset(counts=counts)
    estimator = ExcessMapEstimator(energy_edges=energy_edges)
    grouping = energy_grouping(estimator, dataset)
    assert grouping.single_start == single_start
    axis = estimator._get_energy_axis(dataset)
    for weight in (weights, None):
        expected = counts.resample_axis(axis=axis, weights=weight)
        actual = resample_sum(counts.data, None if weight is None else weight.data, grouping)
        assert actual.dtype == expected.data.dtype and actual.shape == expected.data.shape
        np.testing.assert_array_equal(actual, expected.data)
    expected = weights.resample_axis(axis=axis, ufunc=np.logical_or)
    np.testing.assert_array_equal(resample_or(weights.data, grouping), expected.data)
