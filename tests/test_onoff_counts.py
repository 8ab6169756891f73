"""On/off counts from event lists (``regions`` kernel family, ``rtafast.onoff``) against
gammapy 2.1's ``RegionNDMap.fill_events`` on real H.E.S.S. runs, on every backend; Li & Ma
and alpha against gammapy's ``WStatCountsStatistic`` and ``SpectrumDatasetOnOff``."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from gammapy.makers import ReflectedRegionsFinder
from gammapy.maps import MapAxis, RegionGeom, RegionNDMap
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion, RectangleSkyRegion

from rtafast.onoff import CircleProblem, OnOffCounter, OnOffStatistics, alpha_from_acceptance

PKS2155 = SkyCoord(329.71693826, -30.2255890, unit="deg")
CRAB = SkyCoord(83.633, 22.014, unit="deg")
RUNS = {33787: PKS2155, 33790: PKS2155, 23523: CRAB, 23592: CRAB}
AXIS = MapAxis.from_energy_bounds(0.5, 40, 10, unit="TeV")


@pytest.fixture(scope="module")
def runs(hess_datastore):
    """Per run: events, on region, gammapy's off regions and WCS, gammapy's counts."""
    out = {}
    for obs_id, target in RUNS.items():
        observation = hess_datastore.obs(obs_id)
        events = observation.events
        on = CircleSkyRegion(target, Angle("0.11 deg"))
        geom_on = RegionGeom.create(region=on, axes=[AXIS])
        center = observation.get_pointing_icrs(observation.tmid)
        off, wcs = ReflectedRegionsFinder().run(region=on, center=center)
        counts_on = RegionNDMap.from_geom(geom_on)
        counts_on.fill_events(events)
        counts_off = RegionNDMap.from_geom(RegionGeom.from_regions(off, axes=[AXIS], wcs=wcs))
        counts_off.fill_events(events)
        per_region = []
        for region in off:
            m = RegionNDMap.from_geom(RegionGeom(region, axes=[AXIS], wcs=wcs))
            m.fill_events(events)
            per_region.append(m.data.ravel())
        out[obs_id] = dict(
            events=events,
            on=on,
            geom_on=geom_on,
            off=off,
            wcs=wcs,
            gammapy=(counts_on.data.ravel(), counts_off.data.ravel(), np.array(per_region)),
        )
    return out


@pytest.mark.parametrize("obs_id", list(RUNS))
def test_counts_equal_gammapy(runs, backend, obs_id):
    run = runs[obs_id]
    counter = OnOffCounter(
        run["on"], run["off"], AXIS, backend, on_wcs=run["geom_on"].wcs, off_wcs=run["wcs"]
    )
    stats = counter.add(run["events"])
    on, off, per_region = run["gammapy"]
    assert on.sum() > 50 and off.sum() > 50  # the test can fail
    np.testing.assert_array_equal(counter.counts_on, on)
    np.testing.assert_array_equal(counter.counts_off, off)
    np.testing.assert_array_equal(counter.counts_off_per_region, per_region)
    assert stats.n_invalid == 0 and stats.n_events == len(run["events"].table)


def test_bunches_add_up(runs, backend):
    """Counts grow bunch by bunch to the whole run's."""
    run = runs[33787]
    counter = OnOffCounter(
        run["on"], run["off"], AXIS, backend, on_wcs=run["geom_on"].wcs, off_wcs=run["wcs"]
    )
    table = run["events"].table
    for start in range(0, len(table), 1000):
        counter.add(table[start : start + 1000])
    np.testing.assert_array_equal(counter.counts_on, run["gammapy"][0])
    np.testing.assert_array_equal(counter.counts_off, run["gammapy"][1])


def test_ambiguous_events_take_gammapys_arithmetic(runs, backend):
    """Events placed on a circle's edge and on energy edges are decided by gammapy."""
    run = runs[23523]
    on = run["on"]
    angles = np.linspace(0, 360, 50, endpoint=False) * u.deg
    edge = on.center.directional_offset_by(angles, on.radius)
    energies = np.resize(AXIS.edges.value, 50).astype(np.float32)
    table = run["events"].table[:50].copy()
    table["RA"][:] = edge.ra.deg.astype(np.float32)
    table["DEC"][:] = edge.dec.deg.astype(np.float32)
    table["ENERGY"][:] = energies
    geom = run["geom_on"]
    expected = RegionNDMap.from_geom(geom)
    expected.fill_events(type(run["events"])(table))
    counter = OnOffCounter(on, run["off"], AXIS, backend, on_wcs=geom.wcs, off_wcs=run["wcs"])
    stats = counter.add(table)
    assert stats.n_ambiguous > 0
    np.testing.assert_array_equal(counter.counts_on, expected.data.ravel())


def test_invalid_events_are_counted_not_binned(runs, backend, caplog):
    run = runs[33787]
    table = run["events"].table[:100].copy()
    table["RA"][:3] = np.nan
    counter = OnOffCounter(run["on"], run["off"], AXIS, backend, off_wcs=run["wcs"])
    assert counter.add(table).n_invalid == 3
    assert "NaN/inf" in caplog.text


def test_bad_input_is_a_clear_error(runs):
    run = runs[33787]
    box = RectangleSkyRegion(PKS2155, 0.2 * u.deg, 0.2 * u.deg)
    with pytest.raises(CircleProblem, match="RectangleSkyRegion is not a CircleSkyRegion"):
        OnOffCounter(box, run["off"], AXIS, "numpy")
    with pytest.raises(ValueError, match="at least one off region"):
        OnOffCounter(run["on"], [], AXIS, "numpy")
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        OnOffStatistics([3, 4], [1, 2], [0.1, 0.0])
    with pytest.raises(ValueError, match="acceptance_off must be finite"):
        alpha_from_acceptance(1, [1, np.nan])


def test_statistics_equal_gammapy(runs):
    """excess, error, sqrt_ts (gammapy's arithmetic) and Li & Ma eq. 17 within 1e-6."""
    for run in runs.values():
        on, off, per_region = run["gammapy"]
        alpha = alpha_from_acceptance(1, len(per_region), len(on))
        ours = OnOffStatistics(on, off, alpha)
        theirs = WStatCountsStatistic(on, off, alpha)
        for name in ("n_sig", "n_bkg", "error", "ts", "sqrt_ts", "stat_null", "stat_max"):
            np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-12)
        big = theirs.ts > 1e-6  # eq. 17 closed form vs gammapy's stat difference
        assert big.sum() >= 5
        np.testing.assert_allclose(ours.significance[big], theirs.sqrt_ts[big], rtol=1e-6)
        total = ours.sum()
        np.testing.assert_allclose(total.sqrt_ts, theirs.sum().sqrt_ts, rtol=1e-12)
