"""Real-time windows: a bunch of events in, the window's dataset and TS map out.

H.E.S.S. run 33787 (PKS 2155-304, the July 2006 flare) replayed as 10 s bunches into a
cumulative window, 150x150x8 cube (3 deg, 0.02 deg, CAR) with 12 true energies, TS map
with a 0.3 deg kernel (point source, index 2); ``RTAFAST_BENCH_FULL=1`` adds the
250x250x8 cube (5 deg: the alert pipeline's target size).

* rtafast, per window: ``BunchAccumulator.add`` (the bunch binned into the window's
  cube), ``current_window()`` (counts kept on the backend) and ``TSMapEstimator.run``
  of the window -- what an alert pipeline does every few seconds. Two rows side by
  side (the bunch's event selection is never timed):
  ``warm``, the next window of the run, after ``WARM_WINDOWS`` windows that made the
  run's IRF maps and the TS kernel (found again, rescaled by live time);
  ``cold``, the first window of a new run: a new accumulator and TS-input cache,
  rtafast's IRF-map cache emptied, the observation's files read before the timing,
  numba's JIT already compiled.
* gammapy, per window: the window's dataset made from scratch (the observation sliced
  to the window, ``MapDatasetMaker``) and ``TSMapEstimator().run`` on it -- how a
  gammapy pipeline gets the same maps, caching nothing -- for the window of the first
  ``WARM_WINDOWS`` bunches.

Agreement (rtafast's TS map of that same window, the last warm-up window; and the
cold path's first window against gammapy's TS map of that window): the same pixels
fitted; at every pixel where gammapy's fit succeeded, norm and TS within what
gammapy's default ``rtol=0.01`` allows (see :func:`_assert_agrees`); where its brentq
failed, rtafast's TS at least gammapy's. How many pixels were compared, and how many
could not be (gammapy's fit failed), is recorded in the row (``check``).
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

from rtafast.cache.irf import default_irf_cache
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
#: gammapy's TSMapEstimator default ``rtol``: its brentq stops when the norm is within
#: ``rtol`` of the root (scipy: ``allclose(root, norm, rtol, atol=xtol)``)
GAMMAPY_RTOL = 0.01
#: scipy.optimize.brentq's default ``xtol`` (absolute, on the norm)
BRENTQ_XTOL = 2e-12
#: Rounding of a per-pixel statistic: gammapy evaluates it on the dataset's float32
#: maps (unit roundoff 6e-8); relative to the pixel's null statistic. Measured on the
#: 3 deg window: the TS differences beyond the norm tolerance below stay under 1e-8.
STAT_RTOL = 1e-7
WINDOW_LABELS = {
    "warm": "numba warm: next window of the run",
    "cold": "numba cold: first window of a new run, IRF maps and TS kernel made",
}


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


def _gammapy_window(observation, geom, n_bunches=WARM_WINDOWS):
    start = _bunch_interval(observation, 0)[0]
    stop = _bunch_interval(observation, n_bunches - 1)[1]
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
    record("window: dataset + ts map", _size(width), "rtafast", WINDOW_LABELS["warm"])
    accumulator = BunchAccumulator(geom, ENERGY_TRUE, array_backend="numba")
    estimator = TSMapEstimator(
        kernel_width=KERNEL_WIDTH, array_backend="numba", cache=TSInputCache()
    )
    next_bunch = iter(range(10**6))

    def bunch():
        start, stop = _bunch_interval(observation, next(next_bunch))
        return (observation.events.select_time(Time([start, stop])), (start, stop)), {}

    def window(events, interval):
        accumulator.add(events, observation, interval)
        return estimator.run(accumulator.current_window())

    for _ in range(WARM_WINDOWS):
        result = window(*bunch()[0])
    counts = accumulator.current_window().counts
    benchmark.extra_info["check"] = _assert_agrees(result, reference, counts=counts)
    benchmark.pedantic(window, setup=bunch, rounds=rounds(20), iterations=1)
    # every window after the first reused the TS kernel (one pointing, rescaled)
    assert estimator.cache.misses == 1


def _load(observation):
    """Read the observation's events and IRFs now (gammapy reads them lazily)."""
    for name in ("events", "aeff", "bkg", "psf", "edisp", "gti"):
        getattr(observation, name)
    return observation


def test_rtafast_first_window(benchmark, record, observation, case, hess_datastore):
    width, geom, _ = case
    record("window: dataset + ts map", _size(width), "rtafast", WINDOW_LABELS["cold"])
    interval = _bunch_interval(observation, 0)
    reference = _gammapy_window(observation, geom, n_bunches=1)
    caches = []
    windows = []

    def setup():
        default_irf_cache.clear()
        new = _load(hess_datastore.obs(RUN))
        caches.append(TSInputCache())
        accumulator = BunchAccumulator(geom, ENERGY_TRUE, array_backend="numba")
        estimator = TSMapEstimator(
            kernel_width=KERNEL_WIDTH, array_backend="numba", cache=caches[-1]
        )
        events = new.events.select_time(Time(interval))
        return (accumulator, estimator, events, new), {}

    def window(accumulator, estimator, events, new):
        accumulator.add(events, new, interval)
        windows.append(accumulator.current_window())
        return estimator.run(windows[-1])

    window(*setup()[0])  # JIT and first-use costs of the code paths
    result = benchmark.pedantic(window, setup=setup, rounds=rounds(3), iterations=1)
    benchmark.extra_info["check"] = _assert_agrees(
        result, reference, min_peak_ts=None, counts=windows[-1].counts
    )
    assert all(cache.misses == 1 for cache in caches)  # each round made its TS kernel


def _one_counted_bin(counts, ts_map):
    """Pixels whose TS kernel footprint holds a single counted bin (any energy): there
    the root bracket of the norm is a few rounding units wide. The footprint is taken as
    a box of the kernel's width plus a pixel on each side (at least the kernel's), so a
    pixel is only counted when there is certainly no second count under its kernel."""
    from scipy.ndimage import uniform_filter

    counted = (np.asarray(counts) > 0).sum(axis=0).astype(np.float64)
    binsz = abs(ts_map.geom.pixel_scales[0].to_value("deg"))
    size = 2 * int(np.ceil(0.5 * KERNEL_WIDTH.to_value("deg") / binsz)) + 3
    near = np.rint(uniform_filter(counted, size=size, mode="constant") * size**2)
    return np.broadcast_to(near == 1, ts_map.data.shape)


def _assert_agrees(result, reference, min_peak_ts=25, counts=None):
    """rtafast's TS map against gammapy's, every pixel gammapy fitted; returns a summary.

    rtafast runs gammapy's brentq with gammapy's default ``rtol``: where both converged,
    each norm is within ``xtol + rtol |n|`` of the root (scipy's guarantee), and the two
    usually coincide; they differ where rounding (rtafast sums in vector lanes, gammapy
    pairwise) moves brentq's stopping test by one iteration. So
    ``|n - n_g| <= xtol + rtol |n_g|``, and the two TS, ``stat(0) - stat(n)``, differ by
    at most the statistic's rise over that norm offset, ``stat'' dn^2 / 2 =
    (dn / err)^2 / 2`` with gammapy's ``norm_err = stat''^-1/2``; both up to the float32
    rounding of the statistics. Where gammapy's fit failed (about one pixel in five on a 2-minute
    window, some at TS down to -105 on the map's edge; gammapy then reports its norm's
    lower bound) nothing of gammapy's is a fit to compare with; rtafast's TS is checked
    to be at least gammapy's there, and the pixels are counted as not compared. Where
    the bracket is a few rounding units wide (one counted bin) the signs at its ends
    are rounding's call: rtafast's brentq may fail where gammapy's converged; such
    pixels are counted, at most 0.1 % of the map and only where gammapy's TS < 1.
    """
    ts_ref = reference["ts"].data
    finite = np.isfinite(ts_ref)
    assert finite.sum() > 100
    if min_peak_ts is not None:  # the flare is there
        assert np.nanmax(ts_ref) > min_peak_ts
    np.testing.assert_array_equal(np.isfinite(result["ts"].data), finite)
    # rtafast runs gammapy's brentq: it fails where gammapy's does, rounding aside: where
    # the bracket is a few rounding units wide, the signs at its ends are rounding's call
    ok, ok_ref = result["success"].data > 0, reference["success"].data > 0
    fitted = finite & ok_ref & ok
    failed = finite & ~ok_ref
    only_rtafast_failed = finite & ok_ref & ~ok
    assert only_rtafast_failed.sum() <= max(2, 1e-3 * finite.sum())
    explained = np.abs(ts_ref) < 1.0
    if counts is not None:
        explained |= _one_counted_bin(counts, reference["ts"])
    assert np.all(explained[only_rtafast_failed]), ts_ref[only_rtafast_failed & ~explained]

    norm, norm_ref = result["norm"].data, reference["norm"].data
    err_ref = reference["norm_err"].data  # inf where the pixel has no counts
    norm_tol = BRENTQ_XTOL + GAMMAPY_RTOL * np.abs(norm_ref)
    solver = 1e-9 * np.where(np.isfinite(err_ref), err_ref, 0.0)  # rtafast's own
    offset = np.abs(norm - norm_ref)
    assert np.all(offset[fitted] <= norm_tol[fitted] + solver[fitted]), np.max(
        (offset / norm_tol)[fitted]
    )

    with np.errstate(divide="ignore", invalid="ignore"):
        rise = np.nan_to_num(0.5 * (norm_tol / err_ref) ** 2, posinf=np.inf)
    rounding = STAT_RTOL * np.maximum(np.abs(reference["stat_null"].data), 1.0)
    delta = result["ts"].data - ts_ref
    below = -delta - rounding
    assert np.all(below[failed] <= 0), (np.max(below[failed]), np.argmax(below[failed]))
    spread = np.abs(delta) - rise - rounding
    assert np.all(spread[fitted] <= 0), (np.max(spread[fitted]), np.argmax(spread[fitted]))
    return (
        f"TS map vs gammapy: {int(fitted.sum())} of {int(finite.sum())} pixels compared "
        f"(norm within rtol={GAMMAPY_RTOL}, TS within the rise that allows, max |dTS| "
        f"{np.max(np.abs(delta[fitted])):.1e}); {int(failed.sum())} not compared "
        "(gammapy's fit failed; rtafast's TS >= gammapy's there); "
        f"{int(only_rtafast_failed.sum())} where only rtafast's brentq failed (rounding at "
        "a bracket end: gammapy's TS < 1 or one counted bin under the kernel)"
    )
