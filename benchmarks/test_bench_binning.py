"""Event binning and bunch accumulation: rtafast against gammapy's ``Map.fill_events``.

* ``select+bin``: synthetic events (float32 columns, as in DL3 files) around the Crab,
  binned into a 200x200x10 cube (0.02 deg, CAR -- gammapy's default projection --,
  ICRS) by ``fill_counts``, against ``Map.fill_events``. 10^6 events by default; 10^7
  too with ``RTAFAST_BENCH_FULL=1``. Each benchmark asserts the cube equals gammapy's,
  and records events/s and the peak memory allocated beyond the input columns
  (tracemalloc).
* ``accumulate bunch``, real use: ``BunchAccumulator.add(events, observation,
  interval)`` as a pipeline calls it, with the 10 s bunches of H.E.S.S. run 33787
  (PKS 2155-304 flare, ~40 events each) into a 200x200x10 cube around the run's
  pointing. Side by side: ``warm``, the next bunch of the run (the run's IRF maps
  already made); ``cold``, the run's first bunch into a new accumulator with rtafast's
  IRF-map cache emptied (the IRF maps are made: gammapy's maker), numba's JIT already
  compiled, the observation's files read before the timing. The cube is asserted equal
  to gammapy's ``fill_events`` of the same bunches. No gammapy row: gammapy has no
  incremental window (its from-scratch window is in test_bench_stream.py).
* ``bin real events``: real DL3 event lists as read from their files (float32 columns;
  the 4 H.E.S.S. Crab runs stacked, 30129 events; the 15 H.E.S.S. runs of the July 2006
  PKS 2155-304 flare stacked, 141715 events; the 2 CTA 1DC Galactic-plane runs stacked,
  212603 events, RA stored negative) into a 5 deg x 5 deg CAR cube (0.02 deg, 10 energy
  bins) around the events, ICRS and Galactic: ``fill_counts`` against
  ``Map.fill_events``, cubes asserted equal. Real events differ from the synthetic
  ones in what costs: negative RA (wrapped as astropy's ``Longitude`` does), float32
  coordinates binned in another frame (~1 % of the events near a bin edge go through
  gammapy's own arithmetic), fewer events than bins (no per-thread histograms: the
  counted events' bins are added afterwards), many events outside the cube.
* ``accumulate bunch``, kernel alone: ``bin_into`` of 10^4 synthetic events whose
  columns were extracted beforehand, into a cube already on the backend -- the binning
  kernel without ``add``'s checks, column extraction and bookkeeping.
"""

import tracemalloc

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time
from bench_settings import FULL, rounds, skip_simulated_cuda
from gammapy.data import EventList
from gammapy.maps import Map, MapAxis, WcsGeom

from rtafast.cache.irf import default_irf_cache
from rtafast.events.binning import GeomBinning, bin_into, event_columns, fill_counts
from rtafast.stream import BunchAccumulator

SIZES = [10**6] + ([10**7] if FULL else [])
GEOM = WcsGeom.create(
    skydir=(83.63, 22.01),
    binsz=0.02,
    width=(4, 4),
    frame="icrs",
    axes=[MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV")],
)
N_BINS = int(np.prod(GEOM.data_shape))


def _events(n, seed=0):
    rng = np.random.default_rng(seed)
    table = Table(
        {
            "RA": (83.63 + rng.normal(0, 1.5, n)).astype(np.float32),
            "DEC": (22.01 + rng.normal(0, 1.5, n)).astype(np.float32),
            "ENERGY": (10 ** rng.uniform(-0.5, 2, n)).astype(np.float32),
        }
    )
    table["TIME"] = Time("2026-01-01", scale="tt") + np.zeros(n) * u.s
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    return EventList(table)


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n:.0e}")
def events(request):
    events = _events(request.param)
    reference = Map.from_geom(GEOM)
    reference.fill_events(events)
    return request.param, events, reference


def _fill_with_gammapy(geom, event_list):
    counts = Map.from_geom(geom)
    counts.fill_events(event_list)
    return counts


def test_gammapy_fill_events(benchmark, record, events):
    n, event_list, reference = events
    record("select+bin", f"{n:.0e} events 10x200x200", "gammapy", n_events=n, n_bins=N_BINS)

    counts = benchmark.pedantic(
        _fill_with_gammapy, args=(GEOM, event_list), rounds=rounds(5), iterations=1
    )
    np.testing.assert_array_equal(counts.data, reference.data)


def test_rtafast_fill_counts(benchmark, record, events, backend):
    skip_simulated_cuda(backend)
    backend_name = backend.name
    n, event_list, reference = events
    record(
        "select+bin",
        f"{n:.0e} events 10x200x200",
        "rtafast",
        backend_name,
        n_events=n,
        n_bins=N_BINS,
    )
    fill_counts(GEOM, _events(1000), array_backend=backend_name)  # JIT warm-up
    tracemalloc.start()
    counts = fill_counts(GEOM, event_list, array_backend=backend_name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    benchmark.extra_info["peak_alloc_MB"] = peak / 1e6
    benchmark.extra_info["events_per_s"] = None
    counts = benchmark.pedantic(
        lambda: fill_counts(GEOM, event_list, array_backend=backend_name),
        rounds=rounds(15),
        warmup_rounds=2,
        iterations=1,
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["events_per_s"] = n / benchmark.stats.stats.median
    np.testing.assert_array_equal(counts.data, reference.data)


REAL_SETS = {
    "hess-crab-4-runs": ("hess-dl3-dr1", [23523, 23526, 23559, 23592]),
    "hess-pks2155-15-runs": ("hess-dl3-dr1", list(range(33787, 33802))),
    "cta-1dc-gps-2-runs": ("cta-1dc", [110380, 111140]),
}


def _real_event_list(name):
    from gammapy.data import DataStore

    from rtafast_devtools.reference_data import DataNotFoundError, find_data_dir

    sub, obs_ids = REAL_SETS[name]
    try:
        root = find_data_dir(sub) / sub
    except DataNotFoundError as error:  # e.g. a GPU lease that carried only some folders
        pytest.skip(str(error))
    if sub == "cta-1dc":
        files = [root / f"data/baseline/gps/gps_baseline_{i}.fits" for i in obs_ids]
        return EventList.from_stack([EventList.read(f) for f in files])
    store = DataStore.from_dir(root)
    return EventList.from_stack([store.obs(i).events for i in obs_ids])


@pytest.fixture(
    scope="module",
    params=[(s, f) for s in REAL_SETS for f in ("icrs", "galactic")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def real_events(request, data_dir):
    name, frame = request.param
    return real_event_set(name, frame)


def real_event_set(name, frame):
    """``(size label, EventList, 5°x5° 0.02° CAR geometry on the events, gammapy's counts)``
    of one of :data:`REAL_SETS` (skips without its data)."""
    event_list = _real_event_list(name)
    geom = WcsGeom.create(
        skydir=event_list.radec[: min(len(event_list.table), 10000)].transform_to(frame)[0],
        binsz=0.02,
        width=5,
        frame=frame,
        proj="CAR",
        axes=[MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV")],
    )
    reference = Map.from_geom(geom)
    reference.fill_events(event_list)
    size = f"{name} ({len(event_list.table)} events) 10x250x250 {frame}"
    return size, event_list, geom, reference


@pytest.mark.data
def test_gammapy_fill_real_events(benchmark, record, real_events):
    size, event_list, geom, reference = real_events
    record("bin real events", size, "gammapy")

    counts = benchmark.pedantic(
        _fill_with_gammapy, args=(geom, event_list), rounds=rounds(5), iterations=1
    )
    np.testing.assert_array_equal(counts.data, reference.data)


@pytest.mark.data
def test_rtafast_fill_real_events(benchmark, record, real_events, backend):
    skip_simulated_cuda(backend)
    size, event_list, geom, reference = real_events
    record("bin real events", size, "rtafast", backend.name)
    fill_counts(geom, event_list, array_backend=backend.name)  # JIT warm-up
    counts = benchmark.pedantic(
        lambda: fill_counts(geom, event_list, array_backend=backend.name),
        rounds=rounds(15),
        warmup_rounds=2,
        iterations=1,
    )
    np.testing.assert_array_equal(counts.data, reference.data)


def test_accumulate_one_bunch(benchmark, record, backend):
    """The binning kernel alone: ``bin_into`` of one bunch of 10^4 events whose columns
    were extracted beforehand, into a 10x200x200 cube already on the backend (the host
    columns copied to the device included, the GPU synchronised). Not
    ``BunchAccumulator.add``: see :func:`test_accumulator_add`."""
    skip_simulated_cuda(backend)
    record(
        "accumulate bunch",
        "1e4 events into 10x200x200",
        "rtafast",
        f"{backend.name} bin_into alone: kernel on extracted columns",
        n_events=10**4,
        n_bins=N_BINS,
    )
    binning = GeomBinning.for_geom(GEOM)
    bunch = _events(10**4, seed=1)
    columns = event_columns(bunch, binning.axis.unit)
    cube = backend.asarray(np.zeros(binning.n_bins))
    bin_into(cube, binning, *columns, backend)  # warm-up
    before, calls = cube.sum(), []

    def add():
        calls.append(1)
        stats = bin_into(cube, binning, *columns, backend)
        backend.synchronize()
        return stats

    benchmark.pedantic(add, rounds=rounds(50), warmup_rounds=5, iterations=1)
    reference = Map.from_geom(GEOM)
    reference.fill_events(bunch)
    assert float(cube.sum() - before) == len(calls) * reference.data.sum()


# -- BunchAccumulator.add of real bunches ---------------------------------------------

RUN = 33787
BUNCH = 10 * u.s
ENERGY_TRUE = MapAxis.from_energy_bounds(0.3, 100, 12, unit="TeV", name="energy_true")
ADD_LABELS = {
    "warm": "add warm: next bunch of the run",
    "cold": "add cold: first bunch of a new run, IRF maps made",
}


def _load(observation):
    """Read the observation's events and IRFs now (gammapy reads them lazily)."""
    for name in ("events", "aeff", "bkg", "psf", "edisp", "gti"):
        getattr(observation, name)
    return observation


@pytest.fixture(scope="module")
def pks_run(hess_datastore):
    """(observation, 200x200x10 geometry at its pointing, its 10 s bunches, size label)."""
    observation = _load(hess_datastore.obs(RUN))
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid),
        binsz=0.02,
        width=(4, 4),
        frame="icrs",
        axes=[GEOM.axes["energy"]],
    )
    start, stop = observation.gti.time_start[0], observation.gti.time_stop[0]
    bunches = []
    while start + BUNCH <= stop:
        interval = (start, start + BUNCH)
        bunches.append((observation.events.select_time(Time(interval)), interval))
        start = start + BUNCH
    mean = np.mean([len(events.table) for events, _ in bunches])
    size = f"PKS 2155 run {RUN}, 10 s bunches ({mean:.0f} events) into 10x200x200"
    return observation, geom, bunches, size, int(round(mean))


@pytest.mark.data
@pytest.mark.parametrize("start", list(ADD_LABELS))
def test_accumulator_add(benchmark, record, backend, pks_run, hess_datastore, start):
    """``BunchAccumulator.add`` of a real 10 s bunch, as a pipeline calls it."""
    skip_simulated_cuda(backend)
    observation, geom, bunches, size, n_events = pks_run
    record(
        "accumulate bunch",
        size,
        "rtafast",
        f"{backend.name} {ADD_LABELS[start]}",
        n_events=n_events,
        n_bins=int(np.prod(geom.data_shape)),
    )
    first_events, first_interval = bunches[0]
    # JIT and first-use costs, and the run's IRF maps for the warm case
    accumulator = BunchAccumulator(geom, ENERGY_TRUE, array_backend=backend.name)
    accumulator.add(first_events, observation, first_interval)
    added = [first_events]
    upcoming = iter(bunches[1:])

    def setup():
        if start == "warm":
            events, interval = next(upcoming)
            added.append(events)
            return (accumulator, events, observation, interval), {}
        default_irf_cache.clear()
        new_observation = _load(hess_datastore.obs(RUN))
        events = new_observation.events.select_time(Time(first_interval))
        fresh = BunchAccumulator(geom, ENERGY_TRUE, array_backend=backend.name)
        return (fresh, events, new_observation, first_interval), {}

    last = []

    def add(target, events, obs, interval):
        stats = target.add(events, obs, interval)
        backend.synchronize()
        last[:] = [target]
        return stats

    n_rounds = rounds(50) if start == "warm" else rounds(5)
    warmup = 5 if start == "warm" else 0  # cold: the add before the timing warmed the JIT
    assert n_rounds + warmup < len(bunches)
    benchmark.pedantic(add, setup=setup, rounds=n_rounds, warmup_rounds=warmup, iterations=1)
    if start == "warm":
        expected = Map.from_geom(geom)
        for events in added:
            expected.fill_events(events)
        cube = backend.to_numpy(accumulator.counts_cube)
    else:
        expected = Map.from_geom(geom)
        expected.fill_events(first_events)
        cube = backend.to_numpy(last[0].counts_cube)
        assert len(last[0]._observations) == 1
    assert expected.data.sum() > 0
    np.testing.assert_array_equal(cube, expected.data)
