"""gammapy's arithmetic without gammapy's overhead: the pieces that make real event lists fast.

* astropy's longitude wrapping (``rtafast_kernels.binning.columns.wrap_longitudes``)
  equals ``Longitude`` bit for bit, in float32 and float64;
* the replica of gammapy's binning arithmetic (``rtafast.events.gammapy_bins``) gives
  gammapy's pixel coordinates bit for bit, in the geometry's frame and another one; its
  energy pixels (``linear_spline_pixels``) are SciPy's ``interp1d`` of gammapy's axis,
  bit for bit, inside the axis, beyond it, on its edges and at NaN and infinities;
* the parallel kernel's sparse mode (codes added afterwards) and dense mode (per-thread
  histograms) give the serial cube; ``fill_counts`` returns gammapy's float32 map.
"""

import warnings

import numba
import numpy as np
import pytest
from astropy.coordinates import Longitude, SkyCoord
from gammapy.maps import Map, MapAxis, WcsGeom
from scipy.interpolate import interp1d

from rtafast.events.binning import GeomBinning, fill_counts
from rtafast.events.gammapy_bins import GammapyBins
from rtafast_kernels.binning import cpu
from rtafast_kernels.binning.columns import wrap_longitudes
from rtafast_kernels.binning.gammapy_index import linear_spline, linear_spline_pixels

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wrap_longitudes_is_astropys(dtype):
    rng = np.random.default_rng(0)
    specials = [-0.0, 0.0, -360, 360, 720, -720, 1e30, -1e30, np.nan, np.inf, -np.inf]
    specials += [359.99999, -1e-30, 1e-45, -1e-45, 3.4e38, -359.99999, 719.9999]
    values = np.concatenate(
        [
            rng.uniform(-360, 720, 200_000),
            rng.uniform(-1e-3, 1e-3, 20_000),
            360 + rng.uniform(-1e-3, 1e-3, 20_000),
            rng.uniform(-1e7, 1e7, 20_000),
            specials,
        ]
    )
    with np.errstate(over="ignore"):
        values = values.astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = Longitude(values, unit="deg").value
    wrapped = wrap_longitudes(values)
    assert wrapped.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(wrapped, expected)  # NaN where NaN
    np.testing.assert_array_equal(np.signbit(wrapped), np.signbit(expected))
    inside = values[(values >= 0) & (values < 360)]
    assert wrap_longitudes(inside) is inside  # nothing to wrap: no copy


def _events(geom, n, dtype, seed):
    """Events over the map and around it, many close to pixel and energy-bin edges."""
    rng = np.random.default_rng(seed)
    nx, ny = geom.npix[0].item(), geom.npix[1].item()
    px = np.concatenate([rng.uniform(-5, nx + 5, n), np.round(rng.uniform(0, nx, n)) - 0.5])
    py = np.concatenate([rng.uniform(-5, ny + 5, n), rng.uniform(-1, ny, n)])
    sky = geom.to_image().pix_to_coord((px, py))
    icrs = SkyCoord(sky[0], sky[1], unit="deg", frame=geom.frame).icrs
    edges = geom.axes["energy"].edges.to_value("TeV")
    energy = np.concatenate([10 ** rng.uniform(-0.5, 2, n), rng.choice(edges, n)])
    lon = Longitude(icrs.ra.deg.astype(dtype), unit="deg").value
    return lon, icrs.dec.deg.astype(dtype), energy.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "axis",
    [
        ENERGY,
        MapAxis.from_energy_bounds(1, 10, 1, unit="TeV"),
        MapAxis.from_edges([0.3, 0.5, 2.0, 2.1, 80.0], unit="TeV", name="energy", interp="lin"),
    ],
    ids=["log-10", "log-1", "lin-4"],
)
def test_energy_pixels_are_scipys_spline(axis, dtype):
    transform = axis._transform
    edges = axis.edges.to_value("TeV")
    rng = np.random.default_rng(5)
    energy = np.concatenate(
        [
            rng.uniform(edges[0] / 3, edges[-1] * 3, 20_000),
            edges,
            np.nextafter(edges, 0),
            np.nextafter(edges, np.inf),
            [0.0, -1.0, 1e-30, 1e30, np.nan, np.inf, -np.inf],
        ]
    ).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log of 0 and negative energies
        scaled = transform.scale(energy)
    scipys = interp1d(transform.x, transform.y, kind=1, fill_value="extrapolate")(scaled)
    spline = linear_spline(transform.x, transform.y)
    mine = linear_spline_pixels(scaled, *spline, axis._pix_offset)
    np.testing.assert_array_equal(mine, scipys + axis._pix_offset)
    assert np.array_equal(np.signbit(mine), np.signbit(scipys + axis._pix_offset))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "frame,proj,center",
    [
        ("icrs", "CAR", (83.63, 22.01)),
        ("icrs", "TAN", (329.7, -30.2)),
        ("galactic", "CAR", (184.56, -5.78)),
        ("galactic", "TAN", (0.5, 0.2)),
    ],
)
def test_replica_gives_gammapys_pixels(frame, proj, center, dtype):
    geom = WcsGeom.create(skydir=center, binsz=0.02, width=3, frame=frame, proj=proj, axes=[ENERGY])
    bins = GammapyBins(geom)
    lon, lat, energy = _events(geom, 20_000, dtype, seed=3)
    mine = bins._pixels(lon, lat, energy)
    theirs = bins._gammapy_pixels(lon, lat, energy)
    for a, b in zip(mine, theirs, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    flat = bins.flat_index(lon, lat, energy)
    assert bins._checked == {(np.dtype(dtype).str, np.dtype(dtype).str): True}
    idx = geom.coord_to_idx(
        {"skycoord": SkyCoord(lon, lat, unit="deg"), "energy": energy * geom.axes[0].unit}
    )
    inside = np.all(np.stack(idx) >= 0, axis=0)
    np.testing.assert_array_equal(flat >= 0, inside)
    expected = np.ravel_multi_index(tuple(i[inside] for i in idx[::-1]), geom.data_shape)
    np.testing.assert_array_equal(flat[inside], expected)


def test_replica_mismatch_falls_back_to_gammapy(caplog):
    geom = WcsGeom.create(skydir=(83.63, 22.01), binsz=0.02, width=2, axes=[ENERGY])
    bins = GammapyBins(geom)
    bins._offset = bins._offset + 1e-12  # a replica that is no longer gammapy's
    lon, lat, energy = _events(geom, 500, np.float32, seed=4)
    flat = bins.flat_index(lon, lat, energy)
    assert not any(bins._checked.values())
    assert "differs from gammapy's" in caplog.text
    np.testing.assert_array_equal(flat, GammapyBins(geom).flat_index(lon, lat, energy))


@pytest.mark.parametrize("dense", [True, False], ids=["histograms", "codes"])
def test_parallel_modes_match_serial(monkeypatch, dense):
    geom = WcsGeom.create(
        skydir=(83.63, 22.01), binsz=0.02, width=5, frame="galactic", proj="CAR", axes=[ENERGY]
    )
    binning = GeomBinning(geom)
    lon, lat, energy = _events(geom, 30_000, np.float32, seed=5)
    params = binning.params_for(lon.dtype, energy.dtype)
    monkeypatch.setattr(cpu, "PARALLEL_THRESHOLD", 10**9)
    serial_cube = np.zeros(binning.n_bins, np.float32)
    serial = cpu.bin_events_numba(lon, lat, energy, params, binning.scaled_edges, serial_cube, True)
    monkeypatch.setattr(cpu, "PARALLEL_THRESHOLD", 1000)
    monkeypatch.setattr(cpu, "_MIN_BLOCK", 1000)
    monkeypatch.setattr(cpu, "DENSE_EVENTS_PER_BIN", 0.0 if dense else 1e9)
    cube = np.zeros(binning.n_bins, np.float32)
    for n_threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(n_threads)
        try:
            cube[:] = 0
            outcome = cpu.bin_events_numba(
                lon, lat, energy, params, binning.scaled_edges, cube, True
            )
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        np.testing.assert_array_equal(cube, serial_cube)
        assert outcome[:3] == serial[:3]
        np.testing.assert_array_equal(np.sort(outcome.ambiguous), np.sort(serial.ambiguous))
        np.testing.assert_array_equal(np.sort(outcome.codes), np.sort(serial.codes))
    assert serial.ambiguous.size > 0  # the Galactic frame's float32 band: some ambiguous


def test_fill_counts_is_float32_like_gammapy():
    geom = WcsGeom.create(skydir=(83.63, 22.01), binsz=0.05, width=2, axes=[ENERGY])
    lon, lat, energy = _events(geom, 2000, np.float32, seed=6)
    from astropy.table import Table
    from astropy.time import Time
    from gammapy.data import EventList

    table = Table({"RA": lon - 360.0, "DEC": lat, "ENERGY": energy})  # RA stored negative
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    table["TIME"] = Time(np.full(len(table), 60000.0), format="mjd", scale="tt")
    counts = fill_counts(geom, EventList(table))
    expected = Map.from_geom(geom)
    expected.fill_events(EventList(table))
    assert counts.data.dtype == expected.data.dtype == np.float32
    np.testing.assert_array_equal(counts.data, expected.data)
