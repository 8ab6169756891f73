"""The CUDA binning kernel's own counts (``rtafast_kernels.binning.gpu._bin_kernel``).

The events here lie inside their bins, or near an edge but beyond the ambiguity
tolerance (``GeomBinning.params_for``), so the kernel decides and counts every one
of them itself: none is handed to the host's gammapy fallback (asserted:
``n_ambiguous == 0``). Several events share a bin (the kernel's atomic adds
accumulate), a few lie just outside the map or the energy range. The cube is
compared exactly with the numpy backend and with gammapy's ``Map.fill_events``, and
each event's bin with gammapy's ``geom.coord_to_idx``.

Runs under numba's CUDA simulator (``conftest.py``), with a few thousand events so it
is quick; on a GPU node (``RTAFAST_TEST_REAL_GPU=1``) on the device.
"""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from gammapy.data import EventList
from gammapy.maps import Map, MapAxis, WcsGeom

from rtafast.events.binning import GeomBinning, bin_into, event_columns, fill_counts
from rtafast_kernels import available_backends, resolve_backend
from rtafast_kernels.binning.reference import bin_codes_numpy

ENERGY = MapAxis.from_energy_bounds(0.5, 50, 4, unit="TeV")
VARIANTS = [("icrs", "TAN"), ("galactic", "TAN"), ("icrs", "CAR"), ("galactic", "CAR")]
#: Distance (pixels, energy bins) from an edge of the "near edge" events: far above the
#: ambiguity tolerance (1e-9 for float64 columns; float32: 1e-5 of an energy bin,
#: 5e-5 deg = 5e-4 pixel here in the Galactic frame), far below a bin.
NEAR = {np.float64: 1e-6, np.float32: 1e-2}


@pytest.fixture(scope="module")
def cuda():
    usable, reason = available_backends()["cuda"]
    if not usable:
        pytest.skip(f"cuda backend unavailable: {reason}")
    return resolve_backend("cuda")


def _geom(frame, proj):
    center = SkyCoord(83.6, 22.0, unit="deg").transform_to(frame)
    return WcsGeom.create(
        skydir=center, binsz=0.1, width=(2.0, 1.5), frame=frame, proj=proj, axes=[ENERGY]
    )


def _event_list(ra, dec, energy, dtype):
    columns = {"RA": ra, "DEC": dec, "ENERGY": energy}
    table = Table({name: np.asarray(value, dtype=dtype) for name, value in columns.items()})
    table["TIME"] = Time(np.full(len(table), 60000.0), format="mjd", scale="tt")
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    return EventList(table)


def _kernel_events(geom, dtype, seed, n_crowded=1200, n_spread=600, n_near=300):
    """Events the kernel must bin itself (pixel and energy-bin coordinates chosen first).

    * ``n_crowded`` in 40 bins (tens of events per bin: the atomic adds accumulate),
    * ``n_spread`` anywhere in the map, one pixel and energy bin beyond it included
      (outside: not counted),
    * ``n_near`` within ``NEAR[dtype]`` of a pixel or energy-bin edge, either side.
    Offsets within a bin are at most 0.4 of it from its centre, except the near ones.
    """
    rng = np.random.default_rng(seed)
    nx, ny = geom.npix[0].item(), geom.npix[1].item()
    ne = geom.axes["energy"].nbin
    bins = np.column_stack(
        [rng.integers(0, nx, 40), rng.integers(0, ny, 40), rng.integers(0, ne, 40)]
    )
    crowded = bins[rng.integers(0, 40, n_crowded)]
    spread = np.column_stack(
        [
            rng.integers(-1, nx + 1, n_spread),
            rng.integers(-1, ny + 1, n_spread),
            rng.integers(-1, ne + 1, n_spread),
        ]
    )
    near = np.column_stack(
        [rng.integers(0, nx, n_near), rng.integers(0, ny, n_near), rng.integers(0, ne, n_near)]
    )
    index = np.concatenate([crowded, spread, near]).astype(np.float64)
    offset = rng.uniform(-0.4, 0.4, index.shape)
    # near events: one coordinate (x, y or energy, in turn) just inside or outside an edge
    distance = NEAR[dtype] * rng.uniform(1, 3, n_near) * rng.choice([-1.0, 1.0], n_near)
    axis = np.arange(n_near) % 3
    rows = len(crowded) + len(spread) + np.arange(n_near)
    offset[rows, axis] = rng.choice([-1.0, 1.0], n_near) * (0.5 + distance)
    pix = index + offset

    sky = geom.to_image().pix_to_coord((pix[:, 0], pix[:, 1]))
    icrs = SkyCoord(sky[0], sky[1], unit="deg", frame=geom.frame).icrs
    log_edges = np.log(geom.axes["energy"].edges.to_value("TeV"))
    width = np.diff(log_edges).mean()  # the axis is log-uniform
    energy = np.exp(log_edges[0] + (pix[:, 2] + 0.5) * width)
    order = rng.permutation(len(pix))  # crowded, spread and near events interleaved
    return _event_list(icrs.ra.deg[order], icrs.dec.deg[order], energy[order], dtype)


def _gammapy_counts(geom, events):
    counts = Map.from_geom(geom)
    counts.fill_events(events)
    return counts.data


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("frame,proj", VARIANTS)
def test_cuda_kernel_counts_equal_numpy_and_gammapy(cuda, frame, proj, dtype):
    geom = _geom(frame, proj)
    events = _kernel_events(geom, dtype, seed=len(frame) + len(proj))

    mine = fill_counts(geom, events, array_backend="cuda")
    stats = mine.meta["rtafast_binning"]
    assert stats.n_ambiguous == 0  # every event was binned by the CUDA kernel itself
    assert stats.n_invalid == 0
    assert stats.n_counted > 1500 and stats.n_outside > 50

    expected = _gammapy_counts(geom, events)
    reference = fill_counts(geom, events, array_backend="numpy").data
    np.testing.assert_array_equal(reference, expected)  # the reference itself is gammapy's
    np.testing.assert_array_equal(mine.data, expected)
    assert stats.n_counted == expected.sum()
    assert expected.max() >= 10  # crowded bins: the atomic adds accumulate


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("frame,proj", [("icrs", "TAN"), ("galactic", "CAR")])
def test_cuda_kernel_codes_equal_gammapy_per_event(cuda, frame, proj, dtype):
    """Each event's bin from the kernel, as the sliding window keeps it, is gammapy's;
    removing the kept bins (a bunch expiring) gives an empty cube again."""
    geom = _geom(frame, proj)
    events = _kernel_events(geom, dtype, seed=7, n_crowded=300, n_spread=300, n_near=300)
    binning = GeomBinning.for_geom(geom)
    ra, dec, energy = event_columns(events, binning.axis.unit)
    params = binning.params_for(ra.dtype, energy.dtype)

    device = cuda.xp
    cube = cuda.asarray(np.zeros(binning.n_bins))
    outcome = cuda.bin_events(
        *(device.asarray(c) for c in (ra, dec, energy)),
        cuda.asarray(params),
        cuda.asarray(binning.scaled_edges),
        cube,
        keep_codes=True,
    )
    assert outcome.ambiguous.size == 0
    reference_codes = bin_codes_numpy(ra, dec, energy, params, binning.scaled_edges)
    gammapy_codes = binning.exact_flat_index(ra, dec, energy * binning.axis.unit)
    np.testing.assert_array_equal(reference_codes, gammapy_codes)
    kept = cuda.to_numpy(outcome.codes)
    np.testing.assert_array_equal(np.sort(kept), np.sort(gammapy_codes[gammapy_codes >= 0]))
    np.testing.assert_array_equal(
        cuda.to_numpy(cube), np.bincount(kept, minlength=binning.n_bins).astype(float)
    )
    cuda.scatter_add(cube, outcome.codes, -1.0)
    assert not cuda.to_numpy(cube).any()


def test_cuda_chunks_and_repeated_calls_accumulate(cuda, monkeypatch):
    """Events split over several kernel calls (chunks), the cube added to twice."""
    import rtafast.events.binning as binning_module

    monkeypatch.setattr(binning_module, "CHUNK_EVENTS", 700)
    geom = _geom("icrs", "CAR")
    events = _kernel_events(geom, np.float32, seed=3)
    binning = GeomBinning.for_geom(geom)
    columns = event_columns(events, binning.axis.unit)
    cube = cuda.asarray(np.zeros(binning.n_bins))
    for _ in range(2):
        stats = bin_into(cube, binning, *columns, cuda)
        assert stats.n_ambiguous == 0
    expected = 2 * _gammapy_counts(geom, events)
    np.testing.assert_array_equal(cuda.to_numpy(cube).reshape(expected.shape), expected)
