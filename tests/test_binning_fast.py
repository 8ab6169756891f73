"""The numba binning kernel's float32 screening path (rtafast_kernels.binning.fast_element).

The screening path decides an event's bin in float32 unless the event lies within a
band around a bin edge (or outside the polynomials' domain); those events are
rechecked with the exact float64 math. Two things make that exact:

* the float32 pixel coordinates are within a small fraction of the band of the
  exact ones (measured here on several geometries);
* the cube and the bookkeeping equal the NumPy reference's on adversarial events
  (NaN/inf, far and antipodal events, wrap-around, poles, wide CAR maps, float64
  columns, linear and non-uniform energy axes, tiny cubes).

The comparison with gammapy itself is in test_binning.py (every real run).
"""

import numba
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.maps import MapAxis, WcsGeom

from rtafast.events.binning import GeomBinning
from rtafast_kernels.binning import element as el
from rtafast_kernels.binning import fast_element as fe
from rtafast_kernels.binning.cpu import bin_events_numba, fast_params
from rtafast_kernels.binning.reference import bin_codes_numpy, bin_events_numpy
from rtafast_kernels.jit import cpu_functions

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV")
_fast = cpu_functions(fe)
_fast_pixels, _lon_offset = _fast.fast_pixels, _fast.lon_offset


@numba.njit(error_model="numpy")
def _screen_pixels(lon, lat, energy, bits, q, out, usable):
    for i in range(lon.shape[0]):
        px, py, pe, ok, far = _fast_pixels(
            _lon_offset(np.float64(lon[i]), np.float64(q[fe.F_LON0])),
            np.float32(lat[i] - q[fe.F_LAT0]),
            np.float32(energy[i]),
            bits[i],
            q,
        )
        out[0, i], out[1, i], out[2, i] = px, py, pe
        usable[i] = ok and not far


def _geom(lon, lat, frame, proj, binsz, width, axis=ENERGY):
    center = SkyCoord(lon, lat, unit="deg", frame="icrs").transform_to(frame)
    return WcsGeom.create(
        skydir=center, binsz=binsz, width=width, frame=frame, proj=proj, axes=[axis]
    )


def _events(lon, lat, spread, n, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    ra = (lon + rng.normal(0, spread, n) / max(np.cos(np.radians(lat)), 0.05)) % 360
    dec = np.clip(lat + rng.normal(0, spread, n), -89.99, 89.99)
    energy = 10 ** rng.uniform(-0.6, 1.8, n)
    return ra.astype(dtype), dec.astype(dtype), energy.astype(dtype)


SCREENING_CASES = [
    # (ra, dec of the map, frame, projection, pixel deg, width deg, column dtype)
    (83.63, 22.01, "icrs", "TAN", 0.02, 4, np.float32),
    (83.63, 22.01, "galactic", "CAR", 0.02, 4, np.float32),
    (83.63, 22.01, "icrs", "CAR", 0.002, 1, np.float32),
    (266.4, -28.9, "galactic", "TAN", 0.05, 20, np.float32),
    (10.0, 80.0, "icrs", "TAN", 0.01, 3, np.float32),
    (329.7, -30.2, "icrs", "CAR", 0.02, 5, np.float64),
]


@pytest.mark.parametrize(
    "case", SCREENING_CASES, ids=lambda c: f"{c[2]}-{c[3]}-{c[4]}-{c[6].__name__}"
)
def test_float32_screening_error_is_far_below_its_band(case):
    ra0, dec0, frame, proj, binsz, width, dtype = case
    binning = GeomBinning(_geom(ra0, dec0, frame, proj, binsz, width))
    ra, dec, energy = _events(ra0, dec0, width / 2, 4000, seed=1, dtype=dtype)
    p = binning.params_for(ra.dtype, energy.dtype)
    q = fast_params(p, binning.scaled_edges, energy.dtype)
    out = np.empty((3, ra.size), np.float32)
    usable = np.empty(ra.size, np.bool_)
    bits = energy.view(np.int32 if dtype == np.float32 else np.int64)
    _screen_pixels(ra, dec, energy, bits, q, out, usable)

    exact = np.array([el.sky_to_pixel(float(x), float(y), p) for x, y in zip(ra, dec, strict=True)])
    exact = exact.T
    exact_e = np.array([el.energy_to_pixel(float(e), p, binning.scaled_edges) for e in energy])
    nx, ny = p[el.P_NX], p[el.P_NY]
    near_map = (
        usable & (exact[0] > -10) & (exact[0] < nx + 10) & (exact[1] > -10) & (exact[1] < ny + 10)
    )
    assert near_map.sum() > 1000  # the test sees the map
    sky_error = np.abs(out[:2, near_map] - exact[:, near_map]).max()
    energy_error = np.abs(out[2, usable] - exact_e[usable]).max()
    assert sky_error < q[fe.F_TOL] / 4, (sky_error, q[fe.F_TOL])
    assert energy_error < q[fe.F_ETOL] / 4, (energy_error, q[fe.F_ETOL])


def _adversarial(lon, lat, n=3000, seed=2, dtype=np.float32):
    ra, dec, energy = (c.astype(np.float64) for c in _events(lon, lat, 3.0, n, seed))
    specials = [
        (np.nan, lat, 1.0),
        (lon, np.inf, 1.0),
        (lon, lat, np.nan),
        (lon, lat, -1.0),
        (lon, lat, 0.0),
        (lon, lat, np.inf),
        (lon, lat, 1e-40),
        ((lon + 180) % 360, -lat, 1.0),  # antipodal
        ((lon + 30) % 360, lat, 1.0),  # beyond the polynomials
        (lon, np.clip(lat + 20, -90, 90), 1.0),
        (1e30, lat, 1.0),
        (lon, lat, 1e30),
    ]
    ra = np.concatenate([ra, [s[0] for s in specials]])
    dec = np.concatenate([dec, [s[1] for s in specials]])
    energy = np.concatenate([energy, [s[2] for s in specials]])
    with np.errstate(invalid="ignore", over="ignore"):
        return ra.astype(dtype), dec.astype(dtype), energy.astype(dtype)


ADVERSARIAL_GEOMS = {
    "icrs-TAN": _geom(83.63, 22.01, "icrs", "TAN", 0.02, 4),
    "galactic-CAR": _geom(83.63, 22.01, "galactic", "CAR", 0.02, 4),
    "wrap-ra0": _geom(0.3, -5.0, "icrs", "CAR", 0.05, 6),
    "pole": _geom(120.0, 89.5, "icrs", "TAN", 0.05, 6),
    "wide-CAR": _geom(266.4, -28.9, "galactic", "CAR", 0.2, (40, 20)),
    "tiny-cube": _geom(
        83.63,
        22.01,
        "icrs",
        "TAN",
        1.0,
        3,
        MapAxis.from_edges([1, 3], unit="TeV", name="energy", interp="log"),
    ),
    "linear-axis": _geom(
        83.63,
        22.01,
        "icrs",
        "TAN",
        0.05,
        5,
        MapAxis.from_bounds(0.5, 20, 8, unit="TeV", name="energy", interp="lin"),
    ),
    "custom-edges": _geom(
        83.63,
        22.01,
        "icrs",
        "CAR",
        0.05,
        5,
        MapAxis.from_edges([0.5, 0.7, 1.5, 2, 10, 50], unit="TeV", name="energy", interp="log"),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ADVERSARIAL_GEOMS))
def test_screening_matches_numpy_reference(name, dtype):
    binning = GeomBinning(ADVERSARIAL_GEOMS[name])
    center = binning.geom.center_skydir.icrs
    ra, dec, energy = _adversarial(center.ra.deg, center.dec.deg, dtype=dtype)
    p = binning.params_for(ra.dtype, energy.dtype)
    reference_cube = np.zeros(binning.n_bins)
    reference = bin_events_numpy(ra, dec, energy, p, binning.scaled_edges, reference_cube, True)
    for n_threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        cube = np.zeros(binning.n_bins)
        numba.set_num_threads(n_threads)
        try:
            outcome = bin_events_numba(ra, dec, energy, p, binning.scaled_edges, cube, True)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        np.testing.assert_array_equal(cube, reference_cube)
        assert (outcome.n_counted, outcome.n_invalid) == (reference.n_counted, reference.n_invalid)
        # the reference flags every event near an edge of the pixel grid extended beyond
        # the map (e.g. exactly at the map centre's RA, 20 deg north); the kernel's
        # stage 0 says OUTSIDE for those outside the map for sure: gammapy's arithmetic
        # puts them outside too
        assert set(outcome.ambiguous) <= set(reference.ambiguous)
        decided = np.setdiff1d(reference.ambiguous, outcome.ambiguous)
        flat = binning.exact_flat_index(ra[decided], dec[decided], energy[decided])
        assert np.all(flat == -1), flat
        assert outcome.n_outside == reference.n_outside + decided.size
        np.testing.assert_array_equal(np.sort(outcome.codes), np.sort(reference.codes))
    assert reference.n_invalid == 6  # NaN/inf coordinates or energies, energies <= 0


def test_parallel_blocks_match_serial(monkeypatch):
    """Big inputs are split over private histograms and merged: same cube and codes."""
    import rtafast_kernels.binning.cpu as kb

    binning = GeomBinning(ADVERSARIAL_GEOMS["icrs-TAN"])
    center = binning.geom.center_skydir.icrs
    ra, dec, energy = _events(center.ra.deg, center.dec.deg, 2.0, 50_000, seed=5)
    p = binning.params_for(ra.dtype, energy.dtype)
    serial = np.zeros(binning.n_bins)
    monkeypatch.setattr(kb, "PARALLEL_THRESHOLD", 10**9)
    first = bin_events_numba(ra, dec, energy, p, binning.scaled_edges, serial, True)
    monkeypatch.setattr(kb, "PARALLEL_THRESHOLD", 1000)
    monkeypatch.setattr(kb, "_MIN_BLOCK", 1000)
    monkeypatch.setattr(kb, "_BLOCKS_PER_THREAD", 4)  # several private histograms
    parallel = np.zeros(binning.n_bins)
    second = bin_events_numba(ra, dec, energy, p, binning.scaled_edges, parallel, True)
    np.testing.assert_array_equal(parallel, serial)
    assert first[:3] == second[:3]
    np.testing.assert_array_equal(np.sort(first.codes), np.sort(second.codes))


_near_map = _fast.near_map


@numba.njit
def _near_flags(lon, lat, energy32, q, out):
    for i in range(lon.shape[0]):
        out[i] = _near_map(lon[i], lat[i], energy32[i], q)


def _boundary_events(geom, n=2000, seed=3):
    """Events at random pixel positions within 3 pixels of the map's boundary."""
    rng = np.random.default_rng(seed)
    nx, ny = geom.npix[0].item(), geom.npix[1].item()
    side = rng.integers(0, 4, n)
    along = rng.uniform(-3.5, np.where(side < 2, nx, ny) + 2.5)
    across = rng.uniform(-3.5, 2.5, n)
    px = np.where(side == 0, across, np.where(side == 1, nx - 1 - across, along))
    py = np.where(side == 2, across, np.where(side == 3, ny - 1 - across, along))
    py = np.where(side < 2, along, py)
    lon, lat = geom.to_image().pix_to_coord((px, py))
    sky = SkyCoord(lon, lat, unit="deg", frame=geom.frame).icrs
    return sky.ra.deg, sky.dec.deg


@pytest.mark.parametrize("name", list(ADVERSARIAL_GEOMS))
def test_stage_zero_leaves_out_only_events_outside(name):
    """The kernel's stage 0 (``near_map``) skips events as outside for sure: every one it
    skips is OUTSIDE for the exact reference, or near an edge of the pixel grid extended
    beyond the map and outside by gammapy's arithmetic -- far events, events within a
    few pixels of the map's edges, energies at and beyond the axis' ends -- and it does
    skip far events."""
    geom = ADVERSARIAL_GEOMS[name]
    binning = GeomBinning(geom)
    center = geom.center_skydir.icrs
    ra, dec, energy = _adversarial(center.ra.deg, center.dec.deg, n=6000, dtype=np.float64)
    edge_ra, edge_dec = _boundary_events(geom)
    edge_energy = np.resize(energy[:100], edge_ra.size)
    ra, dec = np.concatenate([ra, edge_ra]), np.concatenate([dec, edge_dec])
    energy = np.concatenate([energy, edge_energy])
    ends = binning.axis.edges.to_value(binning.axis.unit)[[0, -1]]
    energy = np.concatenate([energy, ends * (1 - 1e-6), ends * (1 + 1e-6), ends])
    ra, dec = np.resize(ra, energy.size), np.resize(dec, energy.size)
    for dtype in (np.float32, np.float64):
        columns = [c.astype(dtype) for c in (ra, dec, energy)]
        p = binning.params_for(dtype, dtype)
        q = fast_params(p, binning.scaled_edges, np.float32)
        with np.errstate(invalid="ignore", over="ignore"):
            energy32 = columns[2].astype(np.float32)
        flags = np.empty(energy.size, np.int32)
        _near_flags(columns[0], columns[1], energy32, q, flags)
        codes = bin_codes_numpy(*columns, p, binning.scaled_edges)
        skipped = flags == 0
        near_edge = skipped & (codes == el.AMBIGUOUS)  # of the grid extended beyond the map
        assert np.all(codes[skipped & ~near_edge] == el.OUTSIDE), (name, dtype)
        flat = binning.exact_flat_index(*(c[near_edge] for c in columns))
        assert np.all(flat == -1), (name, dtype, flat)
        if name in ("icrs-TAN", "galactic-CAR", "wrap-ra0", "linear-axis"):
            assert skipped.mean() > 0.2, (name, skipped.mean())
