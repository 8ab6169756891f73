"""Real-time windows: a bunch of events in, the window's dataset and TS map out.

H.E.S.S. run 33787 (PKS 2155-304, the July 2006 flare) replayed as 10 s bunches into a
cumulative window, 150x150x8 cube (3 deg, 0.02 deg, CAR) with 12 true energies, TS map
with a 0.3 deg kernel (point source, index 2); ``RTAFAST_BENCH_FULL=1`` adds the
250x250x8 cube (5 deg: the alert pipeline's target size).

* rtafast, per window: ``BunchAccumulator.add`` (the bunch binned into the window's
  cube), ``dataset()`` and ``TSMapEstimator.run`` -- what an alert pipeline does every
  few seconds. The first ``WARM_WINDOWS`` windows warm the JIT and the caches; each
  timed round is the next window (its bunch's event selection is not timed).
* gammapy, per window: the window's dataset made from scratch (the observation sliced
  to the window, ``MapDatasetMaker``) and ``TSMapEstimator().run`` on it -- how a
  gammapy pipeline gets the same maps -- for the window of the first ``WARM_WINDOWS``
  bunches.

Agreement: rtafast's TS map of that same window (the last warm-up window) has
gammapy's fitted pixels, and TS within gammapy's default tolerance (``rtol=0.01`` on
the norm) where gammapy's fit succeeded.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time
from bench_settings import FULL, rounds
from gammapy.datasets import MapDataset
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator
from gammapy.makers import MapDatasetMaker as GammapyMaker
from gammapy.maps import MapAxis, WcsGeom

from rtafast.estimators import TSMapEstimator
from rtafast.estimators.ts_inputs import TSInputCache
from rtafast.stream import BunchAccumulator

RUN = 33787
BUNCH = 10 * u.s
WARM_WINDOWS = 12
KERNEL_WIDTH = 0.3 * u.deg
ENERGY = MapAxis.from_energy_bounds(0.5, 50, 8, unit="TeV")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.3, 100, 12, unit="TeV", name="energy_true")
WIDTHS = [3.0] + ([5.0] if FULL else [])


@pytest.fixture(scope="module")
def observation(hess_datastore):
    return hess_datastore.get_observations([RUN])[0]


def _bunch_interval(observation, index):
    start = observation.gti.time_start[0] + index * BUNCH
    return start, start + BUNCH


def _size(width):
    n = round(width / 0.02)
    return f"PKS 2155 run, 10 s bunch, {n}x{n}x8, kernel 15x15"


@pytest.fixture(scope="module", params=WIDTHS, ids=lambda w: f"{w:g}deg")
def case(request, observation):
    """(width, geometry, gammapy's TS map of the window of the first bunches)."""
    width = request.param
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid),
        binsz=0.02,
        width=width,
        axes=[ENERGY],
    )
    reference = _gammapy_window(observation, geom)
    return width, geom, reference


def _gammapy_window(observation, geom):
    start = _bunch_interval(observation, 0)[0]
    stop = _bunch_interval(observation, WARM_WINDOWS - 1)[1]
    sliced = observation.select_time(Time([start, stop]))
    empty = MapDataset.create(geom, energy_axis_true=ENERGY_TRUE)
    dataset = GammapyMaker().run(empty, sliced)
    return GammapyTSMapEstimator(kernel_width=KERNEL_WIDTH).run(dataset)


def test_gammapy_window(benchmark, record, observation, case):
    width, geom, reference = case
    record("window: dataset + ts map", _size(width), "gammapy")
    result = benchmark.pedantic(
        _gammapy_window, args=(observation, geom), rounds=rounds(3), iterations=1
    )
    np.testing.assert_allclose(result["ts"].data, reference["ts"].data, rtol=1e-6)


def test_rtafast_window(benchmark, record, observation, case):
    width, geom, reference = case
    record("window: dataset + ts map", _size(width), "rtafast", "numba")
    accumulator = BunchAccumulator(geom, ENERGY_TRUE, backend="numba")
    estimator = TSMapEstimator(kernel_width=KERNEL_WIDTH, backend="numba", cache=TSInputCache())
    next_bunch = iter(range(10**6))

    def bunch():
        start, stop = _bunch_interval(observation, next(next_bunch))
        return (observation.events.select_time(Time([start, stop])), (start, stop)), {}

    def window(events, interval):
        accumulator.add(events, observation, interval)
        return estimator.run(accumulator.dataset())

    for _ in range(WARM_WINDOWS):
        result = window(*bunch()[0])
    _assert_agrees(result, reference)
    benchmark.pedantic(window, setup=bunch, rounds=rounds(20), iterations=1)
    # every window after the first reused the TS kernel (one pointing, rescaled)
    assert estimator.cache.misses == 1


def _assert_agrees(result, reference):
    """Same fitted pixels; TS within gammapy's tolerance where gammapy's fit succeeded
    (on a 2-minute window its default brentq fails on ~1 pixel in 5, some of them at
    a negative TS, down to -105 on the map's edge; rtafast converges there)."""
    ts_ref = reference["ts"].data
    finite = np.isfinite(ts_ref)
    assert finite.sum() > 100 and np.nanmax(ts_ref) > 25  # the flare is there
    np.testing.assert_array_equal(np.isfinite(result["ts"].data), finite)
    assert result["success"].data[finite].all()
    fitted = finite & (reference["success"].data > 0)
    assert fitted.sum() >= 0.5 * finite.sum()
    delta = np.abs(result["ts"].data[fitted] - ts_ref[fitted])
    assert np.all(delta <= 0.05 + 0.02 * np.abs(ts_ref[fitted])), delta.max()
