"""Reflected-regions on/off photometry: rtafast against gammapy, same data, same run.

(a) one H.E.S.S. run of the PKS 2155-304 flare (33787, on region 0.11 deg): the off
regions (finder), the on/off counts and Li & Ma. Inside the timer, for both: the maker's
construction, ``maker.run(dataset, observation)`` (pointing, finder, off counts of the
run's 10^4+ events, the ``SpectrumDatasetOnOff``) and the statistics (gammapy's
``WStatCountsStatistic`` / rtafast's ``OnOffStatistics``: excess, Li & Ma ``sqrt_ts``).
Outside: reading the events and IRFs (both makers read ``observation.rad_max``), the
``SpectrumDataset`` with the on counts (made once, as a pipeline does).
rtafast "warm": a repeated call on the same pointing (every analysis window of a run,
or re-analysis): the finder's regions, the compiled circles and the off geometry come
from rtafast's value-keyed caches (``rtafast.onoff.reuse``, ``rtafast.onoff.compiled``).
rtafast "cold": those three caches emptied before each call (the finder's own
per-pointing plan cache in ``rtafast.makers.regions`` stays warm in both).
(b) one bunch of 10^4 real events (run 33790) added to an ``OnOffCounter`` (numba):
``counter.add(table)`` whole (column reading, kernel, ambiguous events), the bunch's
columns in native byte order as the pipeline's input hands them, and as read from FITS.
"""

import numpy as np
import pytest
from astropy.coordinates import Angle
from bench_settings import rounds
from gammapy.data import EventList
from gammapy.datasets import SpectrumDataset
from gammapy.makers import ReflectedRegionsBackgroundMaker as GammapyMaker
from gammapy.makers import ReflectedRegionsFinder as GammapyFinder
from gammapy.makers import SpectrumDatasetMaker
from gammapy.maps import MapAxis, RegionGeom, RegionNDMap
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion

from rtafast.makers.reflected import ReflectedRegionsBackgroundMaker
from rtafast.onoff import OnOffCounter, OnOffStatistics, compiled, reuse
from rtafast.pipeline.inputs import native_byte_order
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as PKS2155

AXIS = MapAxis.from_energy_bounds(0.5, 40, 10, unit="TeV")
ROUNDS = dict(rounds=rounds(10), warmup_rounds=1, iterations=1)


@pytest.fixture(scope="module")
def run_33787(hess_datastore):
    observation = hess_datastore.obs(33787)
    aeff = observation.aeff  # read once, as in a pipeline that made the dataset
    observation.aeff = aeff
    observation.edisp = observation.edisp  # rad_max reads it when aeff is not point-like
    events = observation.events
    observation.events = events
    region = CircleSkyRegion(PKS2155, Angle("0.11 deg"))
    geom = RegionGeom.create(region=region, axes=[AXIS])
    dataset = SpectrumDatasetMaker(selection=["counts"]).run(
        SpectrumDataset.create(geom=geom), observation
    )
    return observation, dataset


def _statistics(onoff, statistic):
    n_on, n_off = onoff.counts.data.ravel(), onoff.counts_off.data.ravel()
    return statistic(n_on, n_off, onoff.alpha.data.ravel()).sqrt_ts


def test_gammapy_reflected(benchmark, record, run_33787):
    record("reflected on/off", "pks2155 run 33787", "gammapy")
    observation, dataset = run_33787

    def work():
        return _statistics(GammapyMaker().run(dataset, observation), WStatCountsStatistic)

    result = benchmark.pedantic(work, **ROUNDS)
    assert np.nanmax(result) > 5


def _clear_caches():
    for cache in (reuse.FOUND, reuse.GEOMS, compiled.COMPILED):
        cache.clear()


@pytest.mark.parametrize("cache", ["warm", "cold"])
@pytest.mark.parametrize("name", ["numba"])
def test_rtafast_reflected(benchmark, record, run_33787, name, cache):
    record("reflected on/off", "pks2155 run 33787", "rtafast", f"{name} {cache}")
    observation, dataset = run_33787
    reference = _statistics(GammapyMaker().run(dataset, observation), WStatCountsStatistic)

    def work():
        if cache == "cold":
            _clear_caches()
        maker = ReflectedRegionsBackgroundMaker(array_backend=name)
        return _statistics(maker.run(dataset, observation), OnOffStatistics)

    work()
    result = benchmark.pedantic(work, **ROUNDS)
    np.testing.assert_allclose(result, reference, rtol=1e-6)


@pytest.mark.parametrize("columns", ["native", "big-endian"])
def test_rtafast_bunch(benchmark, record, hess_datastore, columns):
    """``native``: the bunch as the pipeline's input hands it (columns byte-swapped once
    per observation); ``big-endian``: a slice of the FITS table as read (one byte-swap
    copy of three columns inside every call)."""
    size = "10^4 events, 13 regions" + ("" if columns == "native" else ", big-endian columns")
    record("on/off bunch", size, "rtafast", "numba", n_events=10_000)
    observation = hess_datastore.obs(33790)
    region = CircleSkyRegion(PKS2155, Angle("0.11 deg"))
    center = observation.get_pointing_icrs(observation.tmid)
    off, wcs = GammapyFinder().run(region=region, center=center)
    bunch = observation.events.table[:10_000]
    if columns == "native":
        bunch = native_byte_order(bunch)
    counter = OnOffCounter(region, off, AXIS, "numba", off_wcs=wcs)
    counter.add(bunch)
    benchmark.pedantic(counter.add, args=(bunch,), rounds=rounds(200), warmup_rounds=5)
    assert counter.counts_on.sum() > 0


def test_gammapy_bunch(benchmark, record, hess_datastore):
    """gammapy's equivalent of (b): ``fill_events`` of the on map and the off-union map."""
    record("on/off bunch", "10^4 events, 13 regions", "gammapy")
    observation = hess_datastore.obs(33790)
    region = CircleSkyRegion(PKS2155, Angle("0.11 deg"))
    center = observation.get_pointing_icrs(observation.tmid)
    off, wcs = GammapyFinder().run(region=region, center=center)
    events = EventList(observation.events.table[:10_000])
    counts_on = RegionNDMap.from_geom(RegionGeom.create(region=region, axes=[AXIS]))
    counts_off = RegionNDMap.from_geom(RegionGeom.from_regions(off, axes=[AXIS], wcs=wcs))

    def work():
        counts_on.fill_events(events)
        counts_off.fill_events(events)

    benchmark.pedantic(work, rounds=rounds(30), warmup_rounds=1)
    assert counts_on.data.sum() > 0
