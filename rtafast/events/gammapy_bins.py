"""The bins gammapy's own arithmetic gives a few events, without its per-call overhead.

Events within rounding of a bin edge ("ambiguous") must land where gammapy's
``Map.fill_events`` puts them, so their bins come from gammapy's arithmetic, not
rtafast's. Through gammapy (``SkyCoord``, ``MapCoord``, a frame transformation,
``WcsGeom.coord_to_idx``) that costs ~0.3 ms per call in the geometry's frame and
~3 ms in another one, whatever the number of events. :class:`GammapyBins` performs
the same floating-point operations on plain arrays, with what does not depend on the
events prepared once per geometry:

* the frame transformation: astropy's steps (e.g. ICRS -> FK5 -> Galactic), each as
  astropy applies it to a unit-spherical position: ``erfa.s2c`` of the angles in
  radians (float32 columns converted to radians in float32, as astropy's unit
  conversion does), ``erfa.rxp`` with the step's matrix, ``erfa.c2s``, the longitude
  wrapped with ``Longitude``'s arithmetic; then radians to degrees;
* the WCS: ``Wcsprm.s2p`` (what ``WCS.wcs_world2pix`` calls);
* the energy axis: the axis' own scale, then the degree-1 B-spline that gammapy's
  ``scipy.interpolate.interp1d(kind=1, fill_value="extrapolate")`` builds at every call,
  evaluated with SciPy's steps in one compiled call
  (:func:`rtafast_kernels.binning.gammapy_index.linear_spline_pixels`), plus the axis'
  pixel offset (-0.5 for edges);
* the indices: ``floor(pix + 0.5)``, -1 outside, as ``WcsGeom.pix_to_idx``.

The first call for each pair of column dtypes also runs gammapy's own path, on the
call's events and on a sample spread over the map and its edges, and compares the
pixel coordinates bit for bit; if they ever differ (another astropy, gammapy or
scipy), gammapy's own path is used from then on for that geometry.
"""

import logging

import astropy.units as u
import erfa
import numpy as np
from astropy.coordinates import ICRS, Longitude, SkyCoord, frame_transform_graph
from astropy.coordinates.transformations import BaseAffineTransform
from gammapy.maps import MapCoord
from gammapy.utils.compat import COPY_IF_NEEDED

from rtafast_kernels.binning.gammapy_index import flat_bins, linear_spline, linear_spline_pixels

__all__ = ["GammapyBins", "frame_steps"]

log = logging.getLogger(__name__)

#: Frame of gammapy's ``EventList.radec``.
EVENT_FRAME = "icrs"
_DEG_TO_RAD = u.deg.to(u.rad)
_RAD_TO_DEG = u.rad.to(u.deg)
# the constants of ``Longitude``'s wrapping in radians (``Angle._wrap_at``)
_FULL_TURN_RAD = u.degree.to(u.rad, 360.0)
_WRAP_RAD = float(Longitude(0.0, u.rad).wrap_angle.to_value(u.rad))
#: Events of the sample each first call compares against gammapy's own path.
_SAMPLE_SIZE = 256


def frame_steps(frame):
    """Matrices of the steps astropy takes from ICRS to ``frame``, or None.

    None when a step is not a pure rotation (astropy's ``BaseAffineTransform`` without
    offset): such a transformation is left to astropy.
    """
    target = SkyCoord(0.0, 0.0, unit="deg", frame=frame).frame.replicate_without_data()
    origin = ICRS(0.0 * u.deg, 0.0 * u.deg)
    transform = frame_transform_graph.get_transform(ICRS, type(target))
    if transform is None:
        return None
    matrices = []
    current = origin
    for step in getattr(transform, "transforms", (transform,)):
        if not isinstance(step, BaseAffineTransform):
            return None
        # the intermediate frame as astropy's CompositeTransform builds it
        attributes = {}
        for name in step.tosys.frame_attributes:
            if hasattr(target, name):
                attributes[name] = getattr(target, name)
            elif hasattr(origin, name):
                attributes[name] = getattr(origin, name)
        step_frame = step.tosys(**attributes)
        matrix, offset = step._affine_params(current, step_frame)
        if offset is not None or matrix is None:
            return None
        matrices.append(np.array(matrix, dtype=np.float64))
        current = step(current, step_frame)
    return matrices


def _wrap_radians(theta):
    """``Longitude(theta, u.rad)``'s values: astropy's ``Angle._wrap_at`` arithmetic."""
    wrap_floor = _WRAP_RAD - _FULL_TURN_RAD
    if not ((theta < wrap_floor) | (theta >= _WRAP_RAD)).any():
        return theta
    theta = theta - (theta - wrap_floor) // _FULL_TURN_RAD * _FULL_TURN_RAD
    theta[theta >= _WRAP_RAD] -= _FULL_TURN_RAD
    theta[theta < wrap_floor] += _FULL_TURN_RAD
    return theta


def _transform(lon, lat, matrices):
    """Longitude and latitude (deg, float64) in the target frame, as astropy computes them."""
    lon_rad = lon * _DEG_TO_RAD  # float32 columns: float32 radians, as astropy's helper
    lat_rad = lat * _DEG_TO_RAD
    for matrix in matrices:
        vectors = erfa.rxp(matrix, erfa.s2c(lon_rad, lat_rad))
        theta, lat_rad = erfa.c2s(vectors)
        lon_rad = _wrap_radians(theta)
    return lon_rad * _RAD_TO_DEG, lat_rad * _RAD_TO_DEG


class GammapyBins:
    """gammapy's bins (``WcsGeom.coord_to_idx``) of events of a geometry, flat.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        A geometry :class:`~rtafast.events.binning.GeomBinning` accepts.
    """

    def __init__(self, geom):
        self.geom = geom
        self.axis = geom.axes["energy"]
        self.data_shape = geom.data_shape
        self.npix = (int(geom.npix[0].item()), int(geom.npix[1].item()))
        self.frame_change = geom.frame != EVENT_FRAME
        self._wcsprm = geom.wcs.wcs
        self._checked = {}  # (lon dtype, energy dtype) -> replica equals gammapy
        self._matrices = frame_steps(geom.frame) if self.frame_change else []
        transform = getattr(self.axis, "_transform", None)
        self._scale = getattr(transform, "scale", None)
        self._offset = getattr(self.axis, "_pix_offset", None)
        self._spline = None  # (knots, coefficients) of gammapy's interp1d, when replicable
        replicable = self._scale is not None and self._offset is not None
        replicable = replicable and getattr(self.axis, "_boundary_type", None) == "monotonic"
        replicable = replicable and getattr(transform, "kind", None) == 1
        replicable = replicable and getattr(transform, "fill_value", None) == "extrapolate"
        if replicable and self._matrices is not None:
            self._spline = linear_spline(transform.x, transform.y)

    @property
    def rotation_steps(self):
        """True when astropy's transformation from ICRS to the map frame is a chain
        of rotations (or no transformation at all)."""
        return self._matrices is not None

    def flat_index(self, lon, lat, energy):
        """Flat bins ``(ie * ny + iy) * nx + ix`` (-1 outside) of events.

        Parameters
        ----------
        lon, lat : ndarray
            RA and Dec (deg, ICRS) in the columns' dtype, RA wrapped as astropy does.
        energy : `~astropy.units.Quantity` or ndarray
            Energies (an ndarray: in the axis unit), in the column's dtype.
        """
        if isinstance(energy, u.Quantity):
            energy = energy.to_value(self.axis.unit)
        energy = np.asarray(energy)
        key = (np.asarray(lon).dtype.str, energy.dtype.str)
        checked = self._checked.get(key)
        if checked is None:
            checked = self._check(lon, lat, energy)
            self._checked[key] = checked
        pix = self._pixels(lon, lat, energy) if checked else self._gammapy_pixels(lon, lat, energy)
        return self._flat(pix)

    def _pixels(self, lon, lat, energy):
        lon, lat = np.asarray(lon), np.asarray(lat)
        if lon.size == 0:
            return np.zeros((3, 0))
        if self._matrices:
            lon, lat = _transform(lon, lat, self._matrices)
        world = np.empty((lon.size, 2))  # float64, as Wcsprm.s2p converts them
        world[:, 0], world[:, 1] = lon, lat
        spatial = self._wcsprm.s2p(world, 0)["pixcrd"]
        pe = linear_spline_pixels(self._scale(energy), *self._spline, self._offset)
        return spatial[:, 0], spatial[:, 1], pe

    def _gammapy_pixels(self, lon, lat, energy):
        if np.size(lon) == 0:
            return np.zeros((3, 0))
        quantity = u.Quantity(energy, self.axis.unit, copy=COPY_IF_NEEDED)
        if self.frame_change:
            sky = {"skycoord": SkyCoord(lon, lat, unit="deg", frame=EVENT_FRAME)}
            coords = MapCoord.create({**sky, "energy": quantity})
        else:  # the same numbers as through a SkyCoord in the map's frame, 3x cheaper
            coords = MapCoord.create({"lon": lon, "lat": lat, "energy": quantity}, frame="icrs")
        return self.geom.coord_to_pix(coords)

    def _flat(self, pix):
        """``WcsGeom.pix_to_idx`` (``floor(pix + 0.5)``, -1 where not finite or outside),
        raveled."""
        return flat_bins(*pix, *self.npix, self.axis.nbin)

    def _check(self, lon, lat, energy):
        """Whether the replica gives gammapy's pixel coordinates, bit for bit."""
        if self._spline is None:
            log.debug("gammapy's arithmetic for %s: no replica (frame or axis)", self.geom)
            return False
        sample = self._sample(np.asarray(lon).dtype, energy.dtype)
        lon = np.concatenate([np.asarray(lon), sample[0]])
        lat = np.concatenate([np.asarray(lat), sample[1]])
        energy = np.concatenate([energy, sample[2]])
        mine = self._pixels(lon, lat, energy)
        theirs = self._gammapy_pixels(lon, lat, energy)
        same = all(
            np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
            for a, b in zip(mine, theirs, strict=True)
        )
        if not same:
            log.warning(
                "rtafast's replica of gammapy's binning arithmetic differs from gammapy's "
                "for this geometry: gammapy's own (slower) path decides its ambiguous events"
            )
        return same

    def _sample(self, sky_dtype, energy_dtype):
        """Events over the map, its edges and beyond, energies around every edge."""
        rng = np.random.default_rng(0)
        nx, ny = self.npix
        px = np.concatenate([rng.uniform(-3, nx + 2, _SAMPLE_SIZE), np.arange(-1, nx + 1) + 0.5])
        py = np.resize(
            np.concatenate([rng.uniform(-3, ny + 2, _SAMPLE_SIZE), np.arange(-1, ny + 1) + 0.5]),
            px.size,
        )
        sky = self.geom.to_image().pix_to_coord((px, py))
        icrs = SkyCoord(sky[0], sky[1], unit="deg", frame=self.geom.frame).icrs
        edges = self.axis.edges.to_value(self.axis.unit)
        beyond = [edges[0] / 2, edges[-1] * 2]  # the spline's extrapolation, both ends
        energy = np.concatenate([edges, edges * (1 + 1e-7), edges * (1 - 1e-7), beyond])
        energy = np.resize(np.concatenate([energy, rng.uniform(edges[0], edges[-1], 64)]), px.size)
        lon = Longitude(icrs.ra.deg.astype(sky_dtype), u.deg).value
        keep = np.isfinite(lon) & np.isfinite(icrs.dec.deg)
        return lon[keep], icrs.dec.deg.astype(sky_dtype)[keep], energy.astype(energy_dtype)[keep]
