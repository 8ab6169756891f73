"""One-norm profile fits on arrays (``rtafast.fit.norm_profile``) against gammapy's
``FluxEstimator`` on real data: PKS 2155-304 flare on/off spectra (WStat) and the same
runs as Cash spectra (background ``alpha * n_off``), and the stacked Crab MapDataset.

gammapy runs with ``Fit(optimize_opts={"tol": 1e-5}, confidence_opts={"backend":
"scipy"})`` (FluxPointsEstimator's confidence backend, a tight MIGRAD tolerance so that
MIGRAD's stopping point is still ~1e-5 of the norm away from the minimum). Tolerances:
norm 5e-5 relative with rtafast's statistic at most gammapy's (rtafast's minimum is at
least as low), the Hesse error 1e-4 (MINUIT's numerical second derivative), errn/errp/ul
1e-5 (measured from MIGRAD's best fit), TS and statistics 1e-7 relative.
"""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from gammapy.datasets import Datasets, SpectrumDataset
from gammapy.estimators.flux import FluxEstimator
from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
from gammapy.maps import MapAxis, RegionGeom
from gammapy.modeling import Fit
from gammapy.modeling.models import PowerLawSpectralModel, SkyModel
from regions import CircleSkyRegion

from rtafast.fit.norm_profile import NormProfile, fit_flux_norm, stat_profile
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as TARGET

FLARE_RUNS = (33787, 33788, 33789)
KEYS = ("norm", "norm_err", "norm_errn", "norm_errp", "norm_ul", "ts", "stat", "stat_null")
TOLERANCE = dict(norm=5e-5, norm_err=1e-4, norm_errn=1e-5, norm_errp=1e-5, norm_ul=1e-5)


def flare_onoff_datasets(store, runs=FLARE_RUNS):
    """Run-wise on/off spectra of the flare (reflected regions, aeff-max 10 % safe mask)."""
    observations = store.get_observations(list(runs), required_irf=["aeff", "edisp"])
    region = CircleSkyRegion(center=TARGET, radius=Angle("0.11 deg"))
    energy = MapAxis.from_energy_bounds(0.4, 20, 10, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(0.1, 40, 20, unit="TeV", name="energy_true")
    empty = SpectrumDataset.create(
        geom=RegionGeom.create(region=region, axes=[energy]), energy_axis_true=energy_true
    )
    maker = SpectrumDatasetMaker(
        selection=["counts", "exposure", "edisp"], containment_correction=True
    )
    background = ReflectedRegionsBackgroundMaker()
    safe = SafeMaskMaker(methods=["aeff-max"], aeff_percent=10)
    datasets = Datasets()
    for observation in observations:
        dataset = maker.run(empty.copy(name=str(observation.obs_id)), observation)
        datasets.append(safe.run(background.run(dataset, observation), observation))
    return datasets


def source_model():
    spectral = PowerLawSpectralModel(index=3.4, amplitude=2e-11 * u.Unit("cm-2 s-1 TeV-1"))
    return SkyModel(spectral_model=spectral, name="pks2155")


@pytest.fixture(scope="module")
def flare(hess_datastore):
    return flare_onoff_datasets(hess_datastore)


def _with_model(datasets):
    copies = Datasets([d.copy(name=d.name) for d in datasets])
    copies.models = [source_model()]
    return copies


def _onoff_arrays(datasets):
    columns = [[], [], [], []]
    for dataset in datasets:
        mask = dataset.mask.data
        for column, data in zip(
            columns,
            (dataset.counts, dataset.counts_off, dataset.alpha, dataset.npred_signal()),
            strict=True,
        ):
            column.append(np.asarray(data.data, dtype=float)[mask])
    return [np.concatenate(c) for c in columns]


def _gammapy_flux(datasets):
    fit = Fit(optimize_opts={"tol": 1e-5}, confidence_opts={"backend": "scipy"})
    estimator = FluxEstimator(source=0, selection_optional=["errn-errp", "ul"], fit=fit)
    result = estimator.run(datasets)
    return {key: float(np.squeeze(result[key])) for key in KEYS + ("success",)}


def _compare(result, expected):
    for key in KEYS:
        rel = TOLERANCE.get(key, 1e-7)
        assert getattr(result, key) == pytest.approx(expected[key], rel=rel), key
    assert result.stat <= expected["stat"] + 1e-9 * abs(expected["stat"])
    assert result.success == bool(expected["success"])


@pytest.mark.parametrize("runs", [[0], [1], [0, 1, 2]], ids=["run0", "run1", "joint"])
def test_wstat_matches_flux_estimator(flare, runs):
    datasets = _with_model([flare[i] for i in runs])
    counts, counts_off, alpha, signal = _onoff_arrays(datasets)
    expected = _gammapy_flux(datasets)
    result = fit_flux_norm(
        counts, signal, counts_off=counts_off, alpha=alpha, array_backend="numpy"
    )
    _compare(result, expected)


def test_cash_matches_flux_estimator(flare):
    """The same runs as Cash spectra: background alpha * n_off, fixed."""
    cash = Datasets([d.to_spectrum_dataset(name=d.name) for d in flare])
    cash.models = [source_model()]
    counts, background, signal = [], [], []
    for dataset in cash:
        mask = dataset.mask.data
        counts.append(dataset.counts.data[mask].astype(float))
        background.append(dataset.npred_background().data[mask])
        signal.append(dataset.npred_signal().data[mask])
    arrays = [np.concatenate(c) for c in (counts, background, signal)]
    expected = _gammapy_flux(cash)
    result = fit_flux_norm(arrays[0], arrays[2], background=arrays[1], array_backend="numba")
    _compare(result, expected)


def test_cash_map_dataset_matches_flux_estimator(hess_crab_stacked):
    dataset = hess_crab_stacked.copy(name="crab")
    model = source_model()
    model.spatial_model = None
    from gammapy.modeling.models import FoVBackgroundModel, PointSpatialModel

    model = SkyModel(
        spectral_model=PowerLawSpectralModel(index=2.6, amplitude="4e-11 cm-2 s-1 TeV-1"),
        spatial_model=PointSpatialModel(lon_0="83.633 deg", lat_0="22.014 deg", frame="icrs"),
        name="crab",
    )
    dataset.models = [model, FoVBackgroundModel(dataset_name="crab")]
    mask = dataset.mask.data
    counts = dataset.counts.data[mask].astype(float)
    background = dataset.npred_background().data[mask]
    signal = dataset.npred_signal().data[mask]
    expected = _gammapy_flux(Datasets([dataset]))
    result = fit_flux_norm(counts, signal, background=background, array_backend="numba")
    _compare(result, expected)


def test_backends_agree(flare, backend):
    arrays = _onoff_arrays(_with_model(flare))
    reference = fit_flux_norm(
        arrays[0], arrays[3], counts_off=arrays[1], alpha=arrays[2], array_backend="numpy"
    )
    device = [backend.asarray(a) for a in arrays]
    result = fit_flux_norm(
        device[0], device[3], counts_off=device[1], alpha=device[2], array_backend=backend.name
    )
    for key in KEYS:
        assert getattr(result, key) == pytest.approx(getattr(reference, key), rel=1e-9), key


def test_stat_profile_matches_gammapy(flare):
    datasets = _with_model(flare)
    counts, counts_off, alpha, signal = _onoff_arrays(datasets)
    norms = np.array([-2.0, 0.0, 0.5, 4.0, 9.0, 30.0])
    amplitude = datasets.models[0].spectral_model.amplitude
    reference = amplitude.value
    expected = []
    for norm in norms:
        amplitude.value = norm * reference
        expected.append(datasets.stat_sum())
    got = stat_profile(counts, signal, norms, counts_off=counts_off, alpha=alpha)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_no_on_counts_matches_flux_estimator(flare):
    """A WStat bin set with no on counts (an empty light-curve bin): negative norm."""
    dataset = flare[0].copy(name="empty")
    dataset.counts.data[...] = 0
    datasets = _with_model([dataset])
    counts, counts_off, alpha, signal = _onoff_arrays(datasets)
    expected = _gammapy_flux(datasets)
    result = fit_flux_norm(counts, signal, counts_off=counts_off, alpha=alpha)
    assert result.norm < 0
    _compare(result, expected)


def test_no_events_kink_matches_flux_estimator(flare, backend):
    """No on and no off counts in any bin: a kink at norm 0 (slopes 2 sum s right,
    -2 sum s / alpha left). gammapy's tight MIGRAD stops at ~1e-16 (success False, a
    ~3e-5 numerical Hesse error across the kink); rtafast: norm 0 exactly, success
    True, norm_err NaN (no curvature), errn/errp/ul and TS as gammapy's."""
    dataset = flare[0].copy(name="no-events")
    dataset.counts.data[...] = 0
    dataset.counts_off.data[...] = 0
    datasets = _with_model([dataset])
    counts, counts_off, alpha, signal = _onoff_arrays(datasets)
    expected = _gammapy_flux(datasets)
    arrays = (backend.asarray(a) for a in (counts, counts_off, alpha, signal))
    counts, counts_off, alpha, signal = arrays
    result = fit_flux_norm(
        counts, signal, counts_off=counts_off, alpha=alpha, array_backend=backend.name
    )
    assert (result.norm, result.success, result.stat, result.ts) == (0.0, True, 0.0, 0.0)
    assert abs(expected["norm"]) < 1e-8 and math.isnan(result.norm_err)
    for key in ("norm_errn", "norm_errp", "norm_ul"):
        assert getattr(result, key) == pytest.approx(expected[key], rel=1e-5), key
    for key in ("ts", "stat", "stat_null"):
        assert getattr(result, key) == pytest.approx(expected[key], abs=1e-9), key
    # the kink between bins with counts: the minimum moves off 0 as soon as one bin has
    # an on count, and the fit is then smooth again
    counts_one = np.zeros(len(signal))
    counts_one[0] = 1.0
    one = fit_flux_norm(counts_one, signal, counts_off=counts_off, alpha=alpha)
    assert one.success and one.norm > 0 and math.isfinite(one.norm_err)


def test_bounds_and_missing_roots(flare):
    arrays = _onoff_arrays(_with_model(flare[:1]))
    kwargs = dict(counts_off=arrays[1], alpha=arrays[2])
    free = fit_flux_norm(arrays[0], arrays[3], **kwargs)
    capped = fit_flux_norm(arrays[0], arrays[3], norm_max=free.norm - 1.0, **kwargs)
    assert capped.norm == free.norm - 1.0
    assert math.isnan(capped.norm_errp) and math.isnan(capped.norm_ul)  # gammapy: no root
    assert capped.norm_errn > 0
    floor = fit_flux_norm(arrays[0], arrays[3], norm_min=free.norm + 0.5, **kwargs)
    assert floor.norm == free.norm + 0.5 and math.isnan(floor.norm_errn)
    only = fit_flux_norm(arrays[0], arrays[3], errn_errp=False, ul=False, **kwargs)
    assert math.isnan(only.norm_errn) and math.isnan(only.norm_ul)
    assert only.norm == pytest.approx(free.norm, rel=1e-12)
    sigma2 = fit_flux_norm(arrays[0], arrays[3], n_sigma=2, **kwargs)
    assert sigma2.norm_err == pytest.approx(2 * free.norm_err, rel=1e-12)
    assert sigma2.norm_errp + sigma2.norm == pytest.approx(free.norm_ul, rel=1e-9)


def test_no_bins_is_gammapys_empty_result():
    result = fit_flux_norm(np.zeros(0), np.zeros(0), background=np.zeros(0))
    assert isinstance(result, NormProfile)
    assert math.isnan(result.norm) and math.isnan(result.ts) and math.isnan(result.norm_ul)
    assert (result.stat, result.stat_null, result.success) == (0.0, 0.0, False)
    assert np.all(stat_profile([], [], [0.0, 1.0], counts_off=[], alpha=[]) == 0.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(), "either background"),
        (dict(background=[1.0, 1.0], counts_off=[1.0, 1.0], alpha=0.2), "either background"),
        (dict(counts_off=[1.0, 1.0]), "either background"),
        (dict(background=[1.0]), "background has 1 bins, counts has 2"),
        (dict(background=[1.0, np.nan]), "background has NaN"),
        (dict(counts_off=[1.0, -2.0], alpha=0.2), "counts_off has 1 negative"),
        (dict(background=[1.0, 1.0], norm_min=2.0, norm_max=1.0), "norm_min 2.0 is above"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_flux_norm(np.array([1.0, 3.0]), np.array([0.5, 1.0]), **kwargs)


def test_invalid_alpha_bins_counted():
    result = fit_flux_norm(
        [3.0, 5.0, 4.0], [1.0, 2.0, 1.0], counts_off=[2.0, 1.0, 9.0], alpha=[0.5, np.nan, 0.0]
    )
    assert result.n_ignored == 2 and result.success
    alone = fit_flux_norm([3.0], [1.0], counts_off=[2.0], alpha=[0.5])
    assert result.norm == pytest.approx(alone.norm, rel=1e-12)
