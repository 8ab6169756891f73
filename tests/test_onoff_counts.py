"""On/off counts from event lists (``regions`` kernel family, ``rtafast.onoff``) against
gammapy 2.1's ``RegionNDMap.fill_events`` on real H.E.S.S. runs, on every backend; the
numba kernel's float32 screen against the exact test and gammapy on events packed
around the circles' edges; Li & Ma and alpha against gammapy's ``WStatCountsStatistic``
and ``SpectrumDatasetOnOff``."""

import astropy.units as u
import numba
import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from astropy.table import Column
from gammapy.makers import ReflectedRegionsFinder
from gammapy.maps import Map, MapAxis, RegionGeom, RegionNDMap, WcsGeom
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion, RectangleSkyRegion

from rtafast.onoff import (
    CircleProblem,
    OnOffCounter,
    OnOffStatistics,
    alpha_from_acceptance,
    counts_in_regions,
)
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as PKS2155
from rtafast_devtools.reference_data import CRAB_POSITION as CRAB
from rtafast_kernels.regions import element as el
from rtafast_kernels.regions import plane

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


def _edge_events(template, centers, radii, energies, dtype):
    """Events on rings at 0.97 .. 1.03 of each circle's radius (sky offsets), every 6 deg
    (rows of ``template``, a real event list, with RA, DEC, ENERGY replaced)."""
    factors = np.linspace(0.97, 1.03, 31)
    angles = np.arange(0.0, 360.0, 6.0) * u.deg
    ra, dec = [], []
    for center, radius in zip(centers, radii, strict=True):
        for f in factors:
            ring = center.directional_offset_by(angles, f * radius)
            ra.append(ring.icrs.ra.deg)
            dec.append(ring.icrs.dec.deg)
    ra, dec = np.concatenate(ra), np.concatenate(dec)
    table = template.table[np.resize(np.arange(len(template.table)), len(ra))]
    table["RA"] = Column(ra.astype(dtype), unit="deg")
    table["DEC"] = Column(dec.astype(dtype), unit="deg")
    table["ENERGY"] = Column(np.resize(energies, len(ra)).astype(dtype), unit="TeV")
    return type(template)(table)


#: Targets of the float32-screen tests: the PKS 2155-304 run, a field across RA = 0
#: and one at Dec 70 (pointings 0.5 deg from the target).
SCREEN_FIELDS = {
    "pks2155": (PKS2155, SkyCoord(329.71693826, -30.7255890, unit="deg")),
    "ra0": (SkyCoord(0.1, 5.0, unit="deg"), SkyCoord(359.7, 5.4, unit="deg")),
    "dec70": (SkyCoord(120.0, 70.0, unit="deg"), SkyCoord(120.0, 70.5, unit="deg")),
}


@pytest.mark.parametrize("field", list(SCREEN_FIELDS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_screen_equals_exact_and_gammapy(runs, field, dtype):
    """Events packed around every circle's edge: the numba kernel (float32 screen) gives
    the counts and ambiguous events of the NumPy reference (exact test everywhere), and
    gammapy's ``fill_events`` counts."""
    target, pointing = SCREEN_FIELDS[field]
    on = CircleSkyRegion(target, Angle("0.11 deg"))
    off, wcs = ReflectedRegionsFinder().run(region=on, center=pointing)
    assert len(off) >= 5
    energies = np.geomspace(0.3, 60, 37)
    events = _edge_events(
        runs[23523]["events"],
        [r.center for r in [on, *off]],
        [0.11 * u.deg] * (len(off) + 1),
        energies,
        dtype,
    )
    geom_on = RegionGeom.create(region=on, axes=[AXIS])
    fast = OnOffCounter(on, off, AXIS, "numba", on_wcs=geom_on.wcs, off_wcs=wcs)
    exact = OnOffCounter(on, off, AXIS, "numpy", on_wcs=geom_on.wcs, off_wcs=wcs)
    assert fast._screens["exact"][plane.S_ON] == 1  # the screen is used
    stats_fast, stats_exact = fast.add(events), exact.add(events)
    assert stats_fast == stats_exact
    np.testing.assert_array_equal(fast.counts, exact.counts)
    counts_on = RegionNDMap.from_geom(geom_on)
    counts_on.fill_events(events)
    counts_off = RegionNDMap.from_geom(RegionGeom.from_regions(off, axes=[AXIS], wcs=wcs))
    counts_off.fill_events(events)
    assert 0 < fast.counts_on.sum() < len(events.table) / len(off)  # the test can fail
    np.testing.assert_array_equal(fast.counts_on, counts_on.data.ravel())
    np.testing.assert_array_equal(fast.counts_off, counts_off.data.ravel())


@pytest.mark.parametrize("field", list(SCREEN_FIELDS))
def test_screen_radii_bracket_the_exact_test(field):
    """In float64, points the screen calls inside (outside) are inside (outside) for the
    exact test, never ambiguous; the band between is thin (< 2 % of the points)."""
    target, pointing = SCREEN_FIELDS[field]
    on = CircleSkyRegion(target, Angle("0.11 deg"))
    off, wcs = ReflectedRegionsFinder().run(region=on, center=pointing)
    counter = OnOffCounter(on, off, AXIS, "numpy", off_wcs=wcs)
    circles, screen = counter.rows["float32-frame"].T, counter._screens["float32-frame"]
    rng = np.random.default_rng(1)
    centers = SkyCoord([r.center.icrs for r in [on, *off]])
    k = rng.integers(0, len(centers), 200_000)
    offset = 0.11 * np.sqrt(rng.uniform(0.8**2, 1.2**2, k.size)) * u.deg
    points = centers[k].directional_offset_by(rng.uniform(0, 360, k.size) * u.deg, offset)
    v = points.icrs.cartesian.xyz.value.T
    x, y = plane.plane_coordinates(v, screen[plane.S_RA0], screen[plane.S_DEC0])
    base = plane.HEADER_SIZE + plane.FIELDS * k
    q = (x - screen[base]) ** 2 + (y - screen[base + 1]) ** 2
    codes = np.array([el.circle_code(*v[i], circles, k[i]) for i in range(0, k.size, 20)])
    inside, outside = q[::20] < screen[base + 2][::20], q[::20] > screen[base + 3][::20]
    assert inside.sum() > 1000 and outside.sum() > 1000
    assert np.all(codes[inside] == 1) and np.all(codes[outside] == 0)
    band = ~(q < screen[base + 2]) & ~(q > screen[base + 3])
    assert 0 < band.mean() < 0.02


def test_counts_in_regions_of_a_cube_equal_gammapy(runs, backend):
    """``counts_in_regions`` on a counts cube: gammapy's ``to_region_nd_map(region,
    func=np.nansum)`` (pixel centres in the region) per region and for the off union."""
    run = runs[33787]
    geom = WcsGeom.create(skydir=PKS2155, width=3, binsz=0.02, axes=[AXIS])
    cube = Map.from_geom(geom)
    cube.fill_events(run["events"])
    cube.data[0, 0, 0] = np.nan  # skipped as np.nansum does (outside the regions)
    ours = counts_in_regions(cube, run["on"], run["off"], backend)
    union = RegionGeom.from_regions(run["off"]).region
    theirs = [cube.to_region_nd_map(r, func=np.nansum) for r in [run["on"], *run["off"], union]]
    expected = np.array([m.data.ravel() for m in theirs])
    assert expected[0].sum() > 50 and expected[-1].sum() > 50  # the test can fail
    np.testing.assert_array_equal(ours, expected)
    with pytest.raises(ValueError, match=r"(?s)off region 0 .* contains no pixel centre"):
        counts_in_regions(cube, run["on"], [CircleSkyRegion(CRAB, 0.1 * u.deg)], "numpy")


def test_columns_in_other_units_and_names(runs):
    """Energies in GeV and lower-case column names take ``event_columns`` (converted as
    gammapy's ``map_coord``): the same counts as the TeV table."""
    run = runs[33787]
    table = run["events"].table
    other = table.copy()
    other["ENERGY"] = other["ENERGY"].to("GeV")
    other.rename_column("RA", "ra")
    counters = [
        OnOffCounter(
            run["on"], run["off"], AXIS, "numba", on_wcs=run["geom_on"].wcs, off_wcs=run["wcs"]
        )
        for _ in range(2)
    ]
    counters[0].add(table)
    counters[1].add(other)
    np.testing.assert_array_equal(counters[1].counts, counters[0].counts)
    np.testing.assert_array_equal(counters[0].counts_on, run["gammapy"][0])


@pytest.mark.parametrize("size", ["bunch", "long"])
def test_parallel_blocks_equal_serial(runs, monkeypatch, size):
    """The numba kernel's parallel blocks (a bunch: one block per thread; a long list:
    blocks of ``BLOCK_EVENTS``) give the counts and the ambiguous events of the serial
    kernel."""
    import rtafast_kernels.regions.cpu as regions_cpu

    run = runs[33787]
    table = run["events"].table
    target = regions_cpu.PARALLEL_MIN_EVENTS + 1001 if size == "bunch" else 2 * 65536 + 7
    times = -(-target // len(table))
    big = table[np.tile(np.arange(len(table)), times)]
    calls = []

    def threads_for(n_threads):
        def choose(n_events):
            calls.append((n_events, n_threads))
            return n_threads

        return choose

    n_threads = min(2, numba.config.NUMBA_NUM_THREADS)  # the pool's size (2 in CI)
    results = []
    for threads in (1, n_threads):
        monkeypatch.setattr(regions_cpu, "_threads_for", threads_for(threads))
        counter = OnOffCounter(
            run["on"], run["off"], AXIS, "numba", on_wcs=run["geom_on"].wcs, off_wcs=run["wcs"]
        )
        results.append((counter.add(big), counter.counts))
    assert calls == [(len(big), 1), (len(big), n_threads)]
    (serial_stats, serial_counts), (parallel_stats, parallel_counts) = results
    np.testing.assert_array_equal(parallel_counts, serial_counts)
    assert parallel_stats == serial_stats
    np.testing.assert_array_equal(serial_counts[0], times * run["gammapy"][0])
    np.testing.assert_array_equal(serial_counts[-1], times * run["gammapy"][1])


def test_threads_of_a_call(monkeypatch):
    """Serial below ``PARALLEL_MIN_EVENTS``; numba's pool as it is up to
    ``EVENT_PARALLEL_THRESHOLD`` (the load check would count the pool's own spinning
    threads); the free cores above."""
    import rtafast_kernels.regions.cpu as regions_cpu
    from rtafast_kernels.launch import EVENT_PARALLEL_THRESHOLD

    monkeypatch.setattr(regions_cpu, "free_threads", lambda: 1)
    assert regions_cpu._threads_for(regions_cpu.PARALLEL_MIN_EVENTS - 1) == 1
    assert regions_cpu._threads_for(10_000) == numba.get_num_threads()
    assert regions_cpu._threads_for(EVENT_PARALLEL_THRESHOLD) == 1


def _random_wcs(rng, frame):
    """A TAN WCS with square (possibly rotated, flipped) pixels, random pointing."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    names = {"icrs": ("RA---TAN", "DEC--TAN"), "galactic": ("GLON-TAN", "GLAT-TAN")}
    wcs.wcs.ctype = names[frame]
    wcs.wcs.crval = [rng.uniform(0, 360), rng.uniform(-75, 75)]
    wcs.wcs.crpix = rng.uniform(-200, 200, size=2)
    step = rng.uniform(0.005, 0.05)
    wcs.wcs.cdelt = [-step, step] if rng.random() < 0.8 else [step, step]
    angle = rng.uniform(0, 2 * np.pi) if rng.random() < 0.5 else 0.0
    wcs.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    wcs.wcs.set()
    return wcs


@pytest.mark.parametrize("wcs_frame", ["icrs", "galactic"])
@pytest.mark.parametrize("region_frame", ["icrs", "galactic"])
def test_vectorised_pixel_circles_equal_regions(wcs_frame, region_frame):
    """``wcsarrays`` (wcslib on arrays) against regions' per-region ``to_pixel`` and
    astropy's ``pixel_to_world``; the screens' radii against footprints mapped by astropy."""
    from rtafast.onoff import circles, wcsarrays

    rng = np.random.default_rng(12 + len(wcs_frame) + 3 * len(region_frame))
    for _ in range(8):
        wcs = _random_wcs(rng, wcs_frame)
        tangent = wcs.pixel_to_world(*wcs.wcs.crpix - 1).transform_to(region_frame)
        n = 15
        centres = tangent.directional_offset_by(
            rng.uniform(0, 360, n) * u.deg, rng.uniform(0, 4, n) * u.deg
        )
        regions = [CircleSkyRegion(c, rng.uniform(0.02, 1.0) * u.deg) for c in centres]
        _, _, _, cx, cy, r_pix = wcsarrays.pixel_circles(regions, wcs)
        theirs = [r.to_pixel(wcs) for r in regions]
        np.testing.assert_allclose(cx, [t.center.x for t in theirs], rtol=0, atol=1e-11)
        np.testing.assert_allclose(cy, [t.center.y for t in theirs], rtol=0, atol=1e-11)
        np.testing.assert_allclose(r_pix, [t.radius for t in theirs], rtol=1e-13)
        x, y = rng.uniform(-300, 300, size=(2, 5, 40))
        ra, dec = wcsarrays.pixels_to_icrs(wcs, x, y)
        expected = wcs.pixel_to_world(x, y).icrs
        np.testing.assert_allclose(ra, expected.ra.deg, rtol=0, atol=1e-9)
        np.testing.assert_allclose(dec, expected.dec.deg, rtol=0, atol=1e-9)
        # the screens' radii (kernel's circle mapped with numpy) against the footprint
        # edges mapped by astropy (720 points, the previous compilation)
        rows = circles.circle_rows(regions, wcs, {"exact": 1e-8})["exact"]
        phi = np.linspace(0, 2 * np.pi, 721)[:-1]
        cxt = np.array([t.center.x for t in theirs])[:, None]
        cyt = np.array([t.center.y for t in theirs])[:, None]
        rt = np.array([t.radius for t in theirs])[:, None]
        edge = wcs.pixel_to_world(cxt + rt * np.cos(phi), cyt + rt * np.sin(phi)).icrs
        dx = ((edge.ra.deg - rows[:, el.C_OFF, None] + 180) % 360 - 180) * rows[:, el.C_COS, None]
        dist = np.hypot(dx, edge.dec.deg - rows[:, el.C_DEC, None])
        r_out, r_in2 = rows[:, el.C_ROUT], rows[:, el.C_RIN2]
        near, far = dist.min(axis=1), dist.max(axis=1)
        polar = r_out == 180
        assert np.all(r_out[~polar] >= far[~polar] * 1.001)
        assert np.all(r_out[~polar] <= far[~polar] * 1.003 + 2e-7)
        assert np.all(r_in2[~polar] <= (near[~polar] * 0.999) ** 2)
        assert np.all(r_in2[~polar] >= (near[~polar] * 0.997 - 2e-7) ** 2)


def test_wcslib_failures_are_circle_problems():
    """A WCS with distortions, or a circle wcslib cannot project: CircleProblem (named)."""
    from astropy.wcs import WCS, Sip

    from rtafast.onoff import circles, wcsarrays

    wcs = _random_wcs(np.random.default_rng(1), "icrs")
    centre = wcs.pixel_to_world(*wcs.wcs.crpix - 1)
    behind = CircleSkyRegion(SkyCoord(centre.ra + 180 * u.deg, -centre.dec), 0.1 * u.deg)
    with pytest.raises(CircleProblem, match="wcslib"):
        circles.circle_rows([behind], wcs, {"exact": 1e-8})
    sip = WCS(naxis=2)
    sip.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    sip.wcs.cdelt = [-0.01, 0.01]
    sip.sip = Sip(np.zeros((3, 3)) + 1e-6, np.zeros((3, 3)), None, None, [0, 0])
    sip.wcs.set()
    with pytest.raises(CircleProblem, match="not TAN"):
        circles.circle_rows([CircleSkyRegion(centre, 0.1 * u.deg)], sip, {"exact": 1e-8})
    with pytest.raises(wcsarrays.WcsProblem, match="distortions"):
        wcsarrays.pixel_circles([CircleSkyRegion(centre, 0.1 * u.deg)], sip)


@pytest.mark.parametrize(
    ("projection", "frame", "center"),
    [("CAR", "icrs", (83.6, 22.0)), ("TAN", "galactic", (184.5, -5.8)),
     ("TAN", "icrs", (10.0, 88.5)), ("CAR", "icrs", (359.9, -30.0))],
)
def test_region_masks_are_gammapys(projection, frame, center):
    """The vectorised circle masks select the pixels gammapy's ``region_mask`` does, in
    both frames, near the pole and across RA 0; other shapes go through gammapy."""
    from rtafast.onoff.maps import region_masks

    rng = np.random.default_rng(7)
    geom = WcsGeom.create(skydir=center, binsz=0.02, width=5, proj=projection, frame=frame)
    middle = geom.center_skydir.icrs
    regions = [
        CircleSkyRegion(
            middle.directional_offset_by(rng.uniform(0, 360) * u.deg, rng.uniform(0, 3.2) * u.deg),
            rng.uniform(0.05, 0.4) * u.deg,
        )
        for _ in range(30)
    ]
    regions.append(RectangleSkyRegion(middle, 0.3 * u.deg, 0.2 * u.deg))
    masks = region_masks(geom, regions)
    assert sum(mask.sum() for mask in masks) > 1000
    for mask, region in zip(masks, regions, strict=True):
        np.testing.assert_array_equal(mask, geom.region_mask([region]).data)
