"""A stream window (rtafast.stream.StreamWindow) as the TS map, excess map and fit take it.

Each estimator's map of a window equals its map of ``window.to_dataset()`` (the dataset
``BunchAccumulator.dataset()`` gives) up to rounding, on every backend, for the first
window of a pointing and for later ones (per-second inputs scaled by the live time the
window carries); windows of several observations are mapped through their dataset.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.data import GTI
from gammapy.datasets import MapDataset
from gammapy.maps import MapAxis, WcsGeom
from gammapy.modeling.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)

from rtafast import Fit, dispatch
from rtafast.estimators import ExcessMapEstimator, TSMapEstimator
from rtafast.estimators.excess_inputs import ExcessInputCache
from rtafast.estimators.ts_inputs import TSInputCache
from rtafast.stream import StreamWindow
from rtafast.stream.pointing import gti_union, window_gti
from tests.conftest import T0
from tests.pipeline_measure_helpers import _observation, offset_max_accumulator
from tests.test_stream import _simulated_bunch

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 4, unit="TeV")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.3, 100, 8, unit="TeV", name="energy_true")
GEOM = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=1.2, axes=[ENERGY])
#: Relative agreement of a window's maps with its dataset's: the dataset's maps are
#: the window's per-second maps scaled in float32
RTOL = 1e-6
#: TS-map quantities defined wherever a pixel is fitted, and those of a converged fit
#: (gammapy's brentq fails where a root sits on its bracket's lower end and rounding
#: gives both ends one sign: such a pixel may fail in one map only)
EVERYWHERE = ("ts", "sqrt_ts", "stat", "stat_null", "npred")
CONVERGED = ("norm", "norm_err", "npred_excess", "niter", "norm_errn", "norm_errp", "norm_ul")


@pytest.fixture(scope="module")
def observation():
    return _observation()


def _accumulator(backend, **kwargs):
    return offset_max_accumulator(GEOM, ENERGY_TRUE, backend, 0.9, **kwargs)


def _windows(accumulator, observation, n, seed=7, first_step=0):
    """The windows after each of ``n`` bunches (a generator: one bunch added at a time)."""
    rng = np.random.default_rng(seed)
    bunches = []
    for step in range(first_step, first_step + n):
        events, interval = _simulated_bunch(rng, step, 20.0, 250, 0.15, (-0.2, 1.5))
        bunches.append((events, observation, interval))
    return accumulator.windows(bunches)


def _assert_same_ts_maps(window_map, dataset_map):
    ok = window_map["success"].data & dataset_map["success"].data
    flips = window_map["success"].data != dataset_map["success"].data
    assert flips.sum() <= max(2, 0.05 * flips.size), int(flips.sum())
    for name in EVERYWHERE + CONVERGED:
        if name not in dataset_map.available_quantities:
            continue
        mine, reference = window_map[name], dataset_map[name]
        assert mine.geom == reference.geom and mine.unit == reference.unit, name
        mine, reference = mine.data.astype(float), reference.data.astype(float)
        if name in EVERYWHERE:
            np.testing.assert_array_equal(np.isfinite(mine), np.isfinite(reference))
            used = np.isfinite(reference)
        else:
            used = ok & np.isfinite(reference)
        np.testing.assert_allclose(mine[used], reference[used], rtol=RTOL, atol=1e-9, err_msg=name)
    assert window_map.gti.time_sum == dataset_map.gti.time_sum


def test_a_window_is_a_snapshot_of_the_accumulator(observation):
    accumulator = _accumulator("numpy")
    first, second = list(_windows(accumulator, observation, 2))
    assert isinstance(first, StreamWindow) and first.pointing is second.pointing
    counts = first.counts.copy()
    assert counts.sum() > 0 and second.counts.sum() > counts.sum()
    np.testing.assert_array_equal(first.counts, counts)  # the second bunch left it alone
    assert first.livetime == pytest.approx(20.0 * (1 - observation.observation_dead_time_fraction))
    assert (first.ontime, second.ontime) == pytest.approx((20.0, 40.0), rel=1e-12)
    assert second.gti.time_sum.to_value("s") == pytest.approx(40.0)

    dataset = accumulator.dataset()  # the current window's dataset, made anew
    mine = second.to_dataset()
    assert mine is second.to_dataset()  # made once
    assert mine is not dataset and mine.name == dataset.name == "stream"
    np.testing.assert_array_equal(mine.counts.data, dataset.counts.data)
    for name in ("exposure", "background", "mask_safe"):
        np.testing.assert_array_equal(getattr(mine, name).data, getattr(dataset, name).data)
    np.testing.assert_array_equal(mine.psf.exposure_map.data, dataset.psf.exposure_map.data)
    assert mine.gti.time_sum == dataset.gti.time_sum
    # the counts are the window's, weighted by the safe mask as gammapy's stack does
    np.testing.assert_array_equal(mine.counts.data, second.counts * mine.mask_safe.data)


@pytest.mark.parametrize(
    "intervals",
    [
        [(0.0, 10.0)],
        [(0.0, 1.0), (1.0, 2.5)],  # touching: window_gti merges them
        [(0.0, 1.0), (3.0, 4.5), (10.1, 12.0)],  # GTI gaps
    ],
)
def test_gti_union_equals_gammapys(intervals):
    """A window's GTI as gammapy's stack into an empty dataset then ``union`` make it,
    Time values bit for bit, without ``union``'s per-row format guessing."""
    empty = MapDataset.create(GEOM).gti
    stacked = empty.copy()
    stacked.stack(window_gti(intervals, T0))
    reference, mine = stacked.union(), gti_union(stacked)
    assert mine.time_ref == reference.time_ref
    assert dict(mine.table.meta) == dict(reference.table.meta)
    for name in ("START", "STOP"):
        ours, theirs = mine.table[name], reference.table[name]
        assert (ours.scale, ours.format) == (theirs.scale, theirs.format)
        np.testing.assert_array_equal(ours.jd1, theirs.jd1)
        np.testing.assert_array_equal(ours.jd2, theirs.jd2)
    overlapping = GTI.create([0.0, 5.0] * u.s, [6.0, 8.0] * u.s, reference_time=T0)
    merged = gti_union(overlapping)  # overlapping intervals: gammapy's union merges them
    assert len(merged.table) == 1 and merged.time_sum.to_value("s") == pytest.approx(8.0)


@pytest.mark.parametrize("options", [{}, {"sum_over_energy_groups": True}, {"errors": True}])
def test_ts_map_of_a_window_equals_its_datasets(backend, observation, options):
    kwargs = dict(kernel_width=0.3 * u.deg, array_backend=backend.name)
    if options.pop("errors", False):
        kwargs["selection_optional"] = ["errn-errp", "ul"]
    kwargs.update(options)
    accumulator = _accumulator(backend.name)
    cache = TSInputCache()
    for window in _windows(accumulator, observation, 3):
        mine = TSMapEstimator(cache=cache, **kwargs).run(window)
        reference = TSMapEstimator(cache=TSInputCache(), **kwargs).run(window.to_dataset())
        _assert_same_ts_maps(mine, reference)
        assert np.nanmax(mine["ts"].data) > 25
    # one pointing: its per-second inputs made once, found again for the later windows
    assert (cache.misses, cache.hits) == (1, 2)


def test_excess_map_of_a_window_equals_its_datasets(backend, observation):
    accumulator = _accumulator(backend.name)
    cache = ExcessInputCache()
    kwargs = dict(correlation_radius="0.2 deg", selection_optional="all")
    for window in _windows(accumulator, observation, 3):
        for energy_edges in (None, [0.5, 5, 50] * u.TeV):
            mine = ExcessMapEstimator(energy_edges=energy_edges, cache=cache, **kwargs).run(window)
            reference = ExcessMapEstimator(
                energy_edges=energy_edges, cache=ExcessInputCache(), **kwargs
            ).run(window.to_dataset())
            for name in reference.available_quantities:
                a, b = mine[name], reference[name]
                assert a.geom == b.geom and a.unit == b.unit, name
                np.testing.assert_allclose(a.data, b.data, rtol=RTOL, atol=0, err_msg=name)


def _models(background_free):
    spatial = PointSpatialModel(lon_0="83.6 deg", lat_0="22.0 deg", frame="icrs")
    source = SkyModel(PowerLawSpectralModel(), spatial, name="source")
    for parameter in source.parameters:
        parameter.frozen = parameter.name != "amplitude"
    background = FoVBackgroundModel(dataset_name="stream")
    background.spectral_model.norm.frozen = not background_free
    return Models([source, background])


@pytest.mark.parametrize("background_free", [False, True], ids=["amplitude", "and-bkg-norm"])
def test_fit_of_a_window_equals_its_datasets(backend, observation, background_free):
    accumulator = _accumulator(backend.name)
    models = _models(background_free)  # one set of models, fitted window after window
    for window in _windows(accumulator, observation, 3):
        window.models = models
        mine = Fit().run(window)
        assert mine.fast_path and mine.array_backend == backend.name
        values = [p.value for p in models.parameters.free_parameters]
        reference_models = _models(background_free)
        dataset = accumulator.dataset()
        dataset.models = reference_models
        reference = Fit(array_backend=backend.name).run(dataset)
        expected = [p.value for p in reference_models.parameters.free_parameters]
        np.testing.assert_allclose(values, expected, rtol=RTOL)
        assert mine.total_stat == pytest.approx(reference.total_stat, abs=1e-6)
        assert mine.ts["source"] == pytest.approx(reference.ts["source"], rel=RTOL)
        np.testing.assert_allclose(
            mine.covariance_result.matrix, reference.covariance_result.matrix, rtol=1e-5
        )
        assert window.to_dataset().models.names == reference_models.names


def test_windows_of_several_observations_are_mapped_through_their_dataset(observation):
    later = _observation(SkyCoord(83.8, 22.3, unit="deg"), obs_id=2, tstart=T0 + 1 * u.h)
    accumulator = _accumulator("numpy")
    (*_, last) = list(_windows(accumulator, observation, 2))
    assert last.pointing is not None
    (window,) = list(_windows(accumulator, later, 1, first_step=190))  # 3800 s: the second run
    assert window.pointing is None and len(window.parts) == 2
    assert window.livetime == pytest.approx(sum(p.livetime for p in window.parts))
    estimator = TSMapEstimator(kernel_width=0.3 * u.deg, array_backend="numpy")
    fast = ("TSMapEstimator.run", dispatch.FAST, None)
    before = dispatch.counts().get(fast, 0)
    mine = estimator.run(window)
    reference = estimator.run(window.to_dataset())
    assert dispatch.counts()[fast] == before + 2
    for name in EVERYWHERE:
        np.testing.assert_array_equal(mine[name].data, reference[name].data)
    excess = ExcessMapEstimator(correlation_radius="0.2 deg")
    np.testing.assert_array_equal(
        excess.run(window)["ts"].data, excess.run(window.to_dataset())["ts"].data
    )
    np.testing.assert_array_equal(
        window.to_dataset().counts.data, accumulator.dataset().counts.data
    )
