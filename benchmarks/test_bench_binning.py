"""Event binning and bunch accumulation: rtafast against gammapy's ``Map.fill_events``.

Synthetic events (float32 columns, as in DL3 files) around the Crab, binned into a
200x200x10 cube (0.02 deg, CAR -- gammapy's default projection --, ICRS). 10^6 events
by default; 10^7 too with ``RTAFAST_BENCH_FULL=1``. Each benchmark asserts the cube
equals gammapy's, and records events/s and the peak memory allocated beyond the input
columns (tracemalloc).
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

from rtafast.binning import GeomBinning, bin_into, event_columns, fill_counts

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


def test_gammapy_fill_events(benchmark, record, events):
    n, event_list, reference = events
    record("select+bin", f"{n:.0e} events 10x200x200", "gammapy", n_events=n, n_bins=N_BINS)

    def fill():
        counts = Map.from_geom(GEOM)
        counts.fill_events(event_list)
        return counts

    counts = benchmark.pedantic(fill, rounds=rounds(5), warmup_rounds=0, iterations=1)
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
    fill_counts(GEOM, _events(1000), backend=backend_name)  # JIT warm-up
    tracemalloc.start()
    counts = fill_counts(GEOM, event_list, backend=backend_name)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    benchmark.extra_info["peak_alloc_MB"] = peak / 1e6
    benchmark.extra_info["events_per_s"] = None
    counts = benchmark.pedantic(
        lambda: fill_counts(GEOM, event_list, backend=backend_name),
        rounds=rounds(15),
        warmup_rounds=2,
        iterations=1,
    )
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["events_per_s"] = n / benchmark.stats.stats.median
    np.testing.assert_array_equal(counts.data, reference.data)


def test_accumulate_one_bunch(benchmark, record, backend):
    """One bunch of 10^4 events added to a 10x200x200 cube already on the backend
    (the host columns copied to the device included, the GPU synchronised)."""
    skip_simulated_cuda(backend)
    record(
        "accumulate bunch",
        "1e4 events into 10x200x200",
        "rtafast",
        backend.name,
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
