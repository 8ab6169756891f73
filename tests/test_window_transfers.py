"""Host-device copies of a stream window's TS map and fit on the cuda backend.

Under numba's CUDA simulator, whose device arrays behave as CuPy's
(:mod:`rtafast_kernels.simulated_device`), every copy counted. After
the first window of a pointing (which computes and uploads its per-second inputs), a
window costs: the new bunch's event columns up (and the binning's few parameters;
its per-event flags down, the binning's business); nothing to make the window; for
the TS map one scalar (whether the scan's inputs are regular) and the result rows
down; for the fit its sums and each Newton iteration's norms and reductions (a few
numbers each way).
"""

import astropy.units as u
import numba
import numpy as np
import pytest
from gammapy.maps import MapAxis, WcsGeom
from gammapy.modeling.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)

from rtafast import Fit
from rtafast.estimators import ExcessMapEstimator, TSMapEstimator
from rtafast.estimators.ts_inputs import TSInputCache
from rtafast.events.binning import GeomBinning, bin_into, event_columns
from rtafast.stream import BunchAccumulator
from rtafast_kernels import resolve_backend
from rtafast_kernels.simulated_device import count_transfers
from rtafast_kernels.tsmap.element import N_OUTPUTS
from tests.test_stream import _simulated_bunch

pytestmark = pytest.mark.skipif(
    not numba.config.ENABLE_CUDASIM,
    reason="counts the copies of the simulated cuda backend (NUMBA_ENABLE_CUDASIM=1)",
)

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 4, unit="TeV")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.3, 100, 8, unit="TeV", name="energy_true")
#: Largest copy that counts as "a few numbers" (the fit's sums, a Newton step's norms
#: and reductions, the binning's parameters), bytes.
NUMBERS = 1024
N_EVENTS = 200


@pytest.fixture(scope="module")
def observation(simulated_observation):
    """tests/conftest.py's one-hour observation (analytic IRFs, starting at ``T0``)."""
    return simulated_observation


def _models():
    spatial = PointSpatialModel(lon_0="83.6 deg", lat_0="22.0 deg", frame="icrs")
    source = SkyModel(PowerLawSpectralModel(), spatial, name="source")
    for parameter in source.parameters:
        parameter.frozen = parameter.name != "amplitude"
    background = FoVBackgroundModel(dataset_name="stream")
    background.spectral_model.norm.frozen = True
    return Models([source, background])


def test_a_window_uploads_its_bunch_and_downloads_its_results(observation):
    rng = np.random.default_rng(3)
    geom = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=1.0, axes=[ENERGY])
    with count_transfers() as transfers:
        accumulator = BunchAccumulator(geom, ENERGY_TRUE, array_backend="cuda")
        estimator = TSMapEstimator(kernel_width=0.3 * u.deg, cache=TSInputCache())
        models = _models()
        fit = Fit()
        for step in range(3):
            events, interval = _simulated_bunch(rng, step, 20.0, N_EVENTS, 0.1, (-0.2, 1.5))
            transfers.clear()
            accumulator.add(events, observation, interval)
            added = list(transfers.log)

            transfers.clear()
            window = accumulator.current_window()
            made = list(transfers.log)

            transfers.clear()
            ts_map = estimator.run(window)
            ts_transfers = list(transfers.log)

            transfers.clear()
            window.models = models
            result = fit.run(window)
            fit_transfers = list(transfers.log)
            assert result.fast_path and result.array_backend == "cuda"

        # the last bunch: its three event columns went up and, from the binning, a few
        # numbers (its parameters); at most a flag per event came down (the binning's)
        uploads = [nbytes for kind, nbytes, _ in added if kind == "upload"]
        columns = [n for n in uploads if n > NUMBERS]
        assert len(columns) == 3 and set(columns) <= {N_EVENTS * 4, N_EVENTS * 8}, added
        downloads = [nbytes for kind, nbytes, _ in added if kind == "download"]
        assert all(nbytes <= N_EVENTS for nbytes in downloads), added

        assert made == []  # the window: counts copied on the device, nothing moves

        # the TS map: the result rows down, one scalar, nothing up
        npix = int(np.isfinite(ts_map["ts"].data).sum())
        assert [k for k, _, _ in ts_transfers if k == "upload"] == []
        assert [n for k, n, _ in ts_transfers if k == "download"] == [N_OUTPUTS * npix * 8]
        assert len([k for k, _, _ in ts_transfers if k == "scalar"]) == 1

        # the fit: only numbers, in both directions
        assert fit_transfers, "the fit ran on the device"
        assert all(nbytes <= NUMBERS for _, nbytes, _ in fit_transfers), fit_transfers
        assert len([k for k, _, _ in fit_transfers if k == "scalar"]) == 0

        # the excess map correlates on the host (scipy's FFT, as gammapy): the counts
        # come down once, nothing goes up
        transfers.clear()
        ExcessMapEstimator(correlation_radius="0.2 deg").run(window)
        assert [(k, n) for k, n, _ in transfers.log] == [("download", window.counts.nbytes)]

        # the same numbers as the dataset path (the window's without models)
        dataset = accumulator.dataset()
    reference = TSMapEstimator(kernel_width=0.3 * u.deg, array_backend="numpy").run(dataset)
    np.testing.assert_allclose(ts_map["ts"].data, reference["ts"].data, rtol=1e-6, atol=1e-8)
    assert np.isfinite(ts_map["ts"].data).sum() > 50


def test_binning_a_bunch_reads_back_one_small_array():
    """``bin_into`` on the cuda backend: the bunch's columns and the binning's parameters
    go up; its classes' counts come down in one copy (four int64), the per-event flags
    only when an event is ambiguous; no scalar syncs."""
    backend = resolve_backend("cuda")
    geom = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=1.0, axes=[ENERGY])
    binning = GeomBinning.for_geom(geom)
    events, _ = _simulated_bunch(np.random.default_rng(5), 0, 20.0, N_EVENTS, 0.3, (-0.5, 2))
    columns = event_columns(events, binning.axis.unit)
    reference = bin_into(np.zeros(binning.n_bins), binning, *columns, resolve_backend("numpy"))
    cube = backend.asarray(np.zeros(binning.n_bins))
    with count_transfers() as transfers:
        stats = bin_into(cube, binning, *columns, backend)
    assert stats == reference
    assert 0 < stats.n_counted < stats.n_events and stats.n_outside > 0  # both classes
    flags = [N_EVENTS] if stats.n_ambiguous else []
    assert [n for kind, n, _ in transfers.log if kind == "download"] == [4 * 8, *flags]
    assert transfers.of("scalar") == []
    uploads = [n for kind, n, _ in transfers.log if kind == "upload"]
    assert sorted(uploads)[-3:] == [N_EVENTS * 4] * 3 or sorted(uploads)[-3:] == [
        N_EVENTS * 8
    ] * 3, uploads
    np.testing.assert_array_equal(backend.to_numpy(cube).sum(), stats.n_counted)
