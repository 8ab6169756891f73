"""Bin event lists into gammapy counts maps with rtafast's kernels.

:class:`GeomBinning` turns a gammapy ``WcsGeom`` (TAN or CAR projection, any frame,
any reference pixel; an energy axis with log or linear interpolation and any
edges) into the packed array the binning kernel reads: one rotation from the
event frame (ICRS) to the WCS native frame, the inverse linear transformation and
the scaled energy edges. :func:`fill_counts` bins an event list with it and gives
the same map as gammapy's ``Map.fill_events``.

Events closer than ~1e-9 pixel to a spatial bin edge (1e-5 of an energy bin for
float32 energies, whose log gammapy takes in float32) are *ambiguous*: the few
there are get their bin from gammapy's own arithmetic
(:class:`~rtafast.events.gammapy_bins.GammapyBins`), so every event lands in the
same bin as with gammapy. Events with NaN/inf coordinates or energies, or energies
<= 0, are skipped and counted (``stats.n_invalid``), never silently dropped.

Columns are binned as read (float32 DL3 columns stay float32); RA is wrapped into
[0, 360) as astropy's ``Longitude`` wraps it inside gammapy
(:func:`rtafast_kernels.binning.columns.wrap_longitudes`).
"""

import functools
import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import Longitude, SkyCoord
from gammapy.maps import WcsGeom, WcsNDMap
from gammapy.utils.interpolation import interpolation_scale

from rtafast_kernels import resolve_backend
from rtafast_kernels.binning import element as el
from rtafast_kernels.binning.columns import wrap_longitudes

from ..cache.keys import geom_key
from .gammapy_bins import EVENT_FRAME, GammapyBins

__all__ = [
    "BinningStats",
    "GeomBinning",
    "bin_into",
    "event_columns",
    "fill_counts",
    "geometry_problem",
    "wcs_map_of",
]

log = logging.getLogger(__name__)

#: Most events counted in a float32 cube (every count below it is a float32 integer).
EXACT_FLOAT32_COUNTS = 1 << 24
#: Most events per kernel call; each backend caps it further (``bin_chunk_events``,
#: from the temporary memory its kernel needs per event).
CHUNK_EVENTS = 1 << 23


@dataclass
class BinningStats:
    """What happened to the events of one binning call."""

    n_events: int = 0
    n_counted: int = 0
    n_outside: int = 0
    n_invalid: int = 0
    n_ambiguous: int = 0

    def __iadd__(self, other):
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def _unit_vectors(lon_deg, lat_deg):
    lon, lat = np.deg2rad(lon_deg), np.deg2rad(lat_deg)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _frame_rotation(event_frame, map_frame):
    """Rotation matrix taking event-frame unit vectors to map-frame unit vectors."""
    basis = SkyCoord(
        x=[1, 0, 0], y=[0, 1, 0], z=[0, 0, 1], representation_type="cartesian", frame=event_frame
    )
    rotated = basis.transform_to(map_frame).cartesian.xyz.value  # columns: images of e_i
    return np.asarray(rotated, dtype=np.float64)


def _native_rotation(wcs):
    """Rotation matrix taking map-frame unit vectors to WCS native unit vectors."""
    lon0, lat0 = wcs.wcs.crval
    lat0 = np.clip(lat0, -80, 80)
    lon = np.array([lon0, lon0 + 3.0, lon0])
    lat = np.array([lat0, lat0, lat0 + 3.0])
    native = wcs.wcs.s2p(np.column_stack([lon, lat]), 0)
    celestial_vectors = _unit_vectors(lon, lat)
    native_vectors = _unit_vectors(native["phi"], native["theta"])
    return native_vectors @ np.linalg.inv(celestial_vectors)


def geometry_problem(geom):
    """Why rtafast's binning kernel cannot fill ``geom``, or None if it can.

    Returns
    -------
    tuple or None
        ``(exception class, message)``: the kernel bins into regular TAN or CAR
        `~gammapy.maps.WcsGeom` with one ``energy`` axis, log or linear.
    """
    if not isinstance(geom, WcsGeom):
        return TypeError, f"rtafast bins into a WcsGeom, got {type(geom).__name__}"
    if not geom.is_regular:
        return ValueError, "rtafast bins into regular WcsGeoms (one pixel size for all bins)"
    if geom.axes.names != ["energy"]:
        return ValueError, (
            f"the geometry's non-spatial axes must be exactly ['energy'], got {geom.axes.names}"
        )
    projection = geom.wcs.wcs.ctype[0][-3:]
    if projection not in ("TAN", "CAR"):
        return NotImplementedError, (
            f"projection {projection!r} of the geometry is not supported (TAN, CAR)"
        )
    interp = geom.axes["energy"].interp
    if interp not in ("log", "lin"):
        return NotImplementedError, f"energy axis interpolation {interp!r}"
    return None


class GeomBinning:
    """A gammapy ``WcsGeom`` compiled for the binning kernel.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        Regular WCS geometry with one non-spatial axis named ``energy``.

    Raises
    ------
    TypeError, ValueError, NotImplementedError
        Naming what is not supported (a HEALPix or region geometry, a projection
        other than TAN/CAR, other non-spatial axes).
    """

    def __init__(self, geom):
        problem = geometry_problem(geom)
        if problem is not None:
            error, message = problem
            raise error(message)
        wcs = geom.wcs
        projection = wcs.wcs.ctype[0][-3:]
        codes = {"TAN": el.PROJ_TAN, "CAR": el.PROJ_CAR}
        self.geom = geom
        self.axis = geom.axes["energy"]
        self.frame_change = geom.frame != EVENT_FRAME
        self.pixel_size_deg = float(np.min(np.abs(wcs.wcs.cdelt)))
        rotation = _native_rotation(wcs) @ _frame_rotation(EVENT_FRAME, geom.frame)
        linear = wcs.wcs.get_pc() * wcs.wcs.cdelt[:, None]
        params = np.zeros(el.PARAM_SIZE)
        params[el.P_ROT : el.P_ROT + 9] = rotation.ravel()
        params[el.P_LIN : el.P_LIN + 4] = np.linalg.inv(linear).ravel()
        params[el.P_CRPIX : el.P_CRPIX + 2] = wcs.wcs.crpix - 1.0
        params[el.P_PROJ] = codes[projection]
        nx, ny = geom.npix[0].item(), geom.npix[1].item()
        params[el.P_NX], params[el.P_NY], params[el.P_NE] = nx, ny, self.axis.nbin
        params[el.P_LOG] = 1.0 if self.axis.interp == "log" else 0.0
        params[el.P_TOL] = 1e-9
        params[el.P_ETOL] = 1e-9
        self.params = params
        self.scaled_edges = np.asarray(
            interpolation_scale(self.axis.interp)(self.axis.edges.value), dtype=np.float64
        )
        self.data_shape = geom.data_shape
        self.n_bins = int(np.prod(self.data_shape))
        self.gammapy_bins = GammapyBins(geom)

    @classmethod
    def for_geom(cls, geom):
        """Cached instance for ``geom`` (geometries compare by value).

        The same geometry object is found by identity first (a value key costs
        ~0.2 ms: it serialises the WCS header).
        """
        hit = _BY_IDENTITY.get(id(geom))
        if hit is not None and hit[0] is geom:
            return hit[1]
        binning = _cached_binning(_GeomKey(geom))
        if len(_BY_IDENTITY) >= 32:
            _BY_IDENTITY.clear()
        _BY_IDENTITY[id(geom)] = (geom, binning)  # the geometry kept alive: its id stays its own
        return binning

    def params_for(self, sky_dtype, energy_dtype):
        """Packed parameters with the edge tolerances suited to the input dtypes.

        * float32 energies: gammapy takes their log in float32, so energies within
          1e-5 of an energy bin of an edge are decided by gammapy's arithmetic;
        * float32 RA/Dec binned in another frame (e.g. Galactic): astropy converts
          them to radians in float32 before its transformation (errors up to ~1e-5
          deg). Where astropy's transformation is a chain of rotations (ICRS to FK5,
          Galactic, ...), the kernel rounds the radians the same way
          (``P_RAD32``) and keeps the exact tolerance; for other frames, events within
          5e-5 deg of a pixel edge are decided by gammapy's arithmetic (about 1 % of
          the events for 0.02 deg pixels).
        """
        params = self.params.copy()
        if np.dtype(energy_dtype) != np.float64:
            params[el.P_ETOL] = 1e-5
        if np.dtype(sky_dtype) != np.float64 and self.frame_change:
            if self.gammapy_bins.rotation_steps:
                params[el.P_RAD32] = 1.0
            else:
                params[el.P_TOL] = 5e-5 / self.pixel_size_deg
        return params

    def exact_flat_index(self, lon, lat, energy):
        """Flat bins of a few events with gammapy's own arithmetic (-1 outside).

        ``lon``, ``lat``: RA, Dec (deg) in the columns' dtype, RA wrapped as astropy
        does; ``energy``: a Quantity or values in the axis unit. See
        :class:`~rtafast.events.gammapy_bins.GammapyBins`.
        """
        return self.gammapy_bins.flat_index(lon, lat, energy)


class _GeomKey:
    def __init__(self, geom):
        self.geom = geom
        self.key = (geom_key(geom), geom.frame) if hasattr(geom, "wcs") else (id(geom),)

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return self.key == other.key


_BY_IDENTITY = {}


@functools.lru_cache(maxsize=32)
def _cached_binning(key):
    return GeomBinning(key.geom)


def event_columns(events, energy_unit):
    """RA, Dec (deg) and energy (in ``energy_unit``) columns of an event list or table.

    Energies are converted the way gammapy's ``EventList.map_coord`` does
    (``Quantity(column).to(unit)``), dtype kept.
    """
    table = getattr(events, "table", events)
    names = {name.upper(): name for name in table.colnames}
    missing = [c for c in ("RA", "DEC", "ENERGY") if c not in names]
    if missing:
        raise KeyError(f"event list has no column(s) {missing} (has {table.colnames})")
    ra = _native(table[names["RA"]])
    if ra.dtype in (np.float32, np.float64):
        ra = wrap_longitudes(ra)  # as astropy's Longitude inside gammapy, in the dtype
    else:
        ra = _native(Longitude(ra, unit="deg").value)
    dec = _native(table[names["DEC"]])
    column = table[names["ENERGY"]]
    if u.Unit(getattr(column, "unit", None) or "") == u.Unit(energy_unit):
        energy = _native(column)  # the same values as .to(): no copy
    else:
        energy = _native(u.Quantity(column).to(energy_unit).value)
    return ra, dec, energy


def _native(column):
    """Contiguous array in native byte order (FITS columns are big-endian), dtype kept."""
    array = np.asarray(column)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def bin_into(cube, binning, ra, dec, energy, backend, keep_codes=False):
    """Add events to a flat backend cube; return their :class:`BinningStats`.

    Parameters
    ----------
    cube : backend array, shape (n_bins,)
        Counts, updated in place.
    binning : GeomBinning
    ra, dec, energy : ndarray
        Event columns (deg, deg, the axis unit), host arrays.
    backend : backend object
    keep_codes : bool
        Also return the bins of the counted events (a backend int64 array), e.g. to
        remove them again from a sliding window.

    Returns
    -------
    stats : BinningStats
    codes : backend array, only with ``keep_codes``
    """
    stats = BinningStats(n_events=len(ra))
    params = backend.asarray(binning.params_for(ra.dtype, energy.dtype))
    edges = backend.asarray(binning.scaled_edges)
    xp = backend.xp
    kept = []
    ambiguous = []
    step = min(CHUNK_EVENTS, backend.bin_chunk_events)
    for start in range(0, len(ra), step):
        chunk = slice(start, start + step)
        columns = [xp.asarray(np.ascontiguousarray(c[chunk])) for c in (ra, dec, energy)]
        outcome = backend.bin_events(*columns, params, edges, cube, keep_codes)
        stats.n_counted += outcome.n_counted
        stats.n_outside += outcome.n_outside
        stats.n_invalid += outcome.n_invalid
        if keep_codes:
            kept.append(outcome.codes)
        ambiguous.append(outcome.ambiguous + start if start else outcome.ambiguous)
    ambiguous = _joined(ambiguous, np.int64)
    if ambiguous.size:  # one call of gammapy's arithmetic for all chunks
        stats.n_ambiguous += ambiguous.size
        flat = binning.exact_flat_index(ra[ambiguous], dec[ambiguous], energy[ambiguous])
        inside = xp.asarray(flat[flat >= 0].astype(np.int64))
        stats.n_counted += int(inside.shape[0])
        stats.n_outside += ambiguous.size - int(inside.shape[0])
        backend.scatter_add(cube, inside, 1.0)
        if keep_codes:
            kept.append(inside)
    if stats.n_invalid:
        log.warning(
            "%d event(s) with NaN/inf coordinates or energy <= 0 were skipped", stats.n_invalid
        )
    if (
        stats.n_events
        and stats.n_outside == stats.n_events - stats.n_invalid
        and not stats.n_counted
    ):
        log.warning(
            "none of the %d event(s) falls inside the geometry (no overlap?)", stats.n_outside
        )
    if keep_codes:
        return stats, _joined(kept, xp.int64, xp)
    return stats


def _joined(pieces, dtype, xp=np):
    """The arrays of ``pieces`` end to end (the one array itself when there is one)."""
    if len(pieces) == 1:
        return pieces[0]
    return xp.concatenate(pieces) if pieces else xp.zeros(0, dtype=dtype)


def fill_counts(geom, events, array_backend=None):
    """Counts map of an event list, identical to gammapy's ``Map.fill_events``.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        Target geometry (TAN or CAR, any frame; an ``energy`` axis).
    events : `~gammapy.data.EventList` or `~astropy.table.Table`
        With RA, DEC (ICRS, deg) and ENERGY columns.
    array_backend : str, optional
        See :func:`rtafast.resolve_backend`.

    Returns
    -------
    counts : `~gammapy.maps.WcsNDMap`
        float32, as gammapy's (``Map.from_geom``); ``counts.meta["rtafast_binning"]``
        holds the :class:`BinningStats`.
    """
    impl = resolve_backend(array_backend)
    binning = GeomBinning.for_geom(geom)
    ra, dec, energy = event_columns(events, binning.axis.unit)
    # float32 counts are exact up to 2^24 per bin: beyond, count in float64 and round
    # once at the end, as gammapy adds its float64 histogram to its float32 map
    dtype = np.float32 if len(ra) <= EXACT_FLOAT32_COUNTS else np.float64
    cube = impl.xp.zeros(binning.n_bins, dtype=dtype)
    stats = bin_into(cube, binning, ra, dec, energy, impl)
    data = impl.to_numpy(cube).astype(np.float32, copy=False).reshape(binning.data_shape)
    counts = wcs_map_of(geom, data)
    counts.meta["rtafast_binning"] = stats
    return counts


#: The unit of a map made without one (``Map.__init__``'s ``u.Unit("")``).
_NO_UNIT = u.Unit("")


def wcs_map_of(geom, data):
    """``WcsNDMap(geom, data=data)``, for ``data`` of ``geom.data_shape`` already.

    The same object (geometry, the array itself, no unit, empty ``meta``) without the
    constructor's two computations of ``geom.data_shape`` to check the shape (~10 us of a
    ~0.17 ms ``fill_counts`` of 3e4 events; tests/test_binning.py compares both).
    """
    counts = WcsNDMap.__new__(WcsNDMap)
    counts._geom = geom
    counts._data = data
    counts._unit = _NO_UNIT
    counts.meta = {}
    return counts
