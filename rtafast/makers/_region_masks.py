"""Pixel arithmetic of gammapy's region finders on plain arrays, float for float.

gammapy 2.1's ``ReflectedRegionsFinder`` and ``WobbleRegionsFinder`` spend their time
in astropy and regions objects: one ``SkyCoord`` round trip per candidate region
(``to_sky``: ``pixel_to_world``, ``world_to_pixel`` twice and ``directional_offset_by``,
~4 ms each), the reference geometry's ``WcsGeom.create`` (~1.2 ms, mostly a throw-away
``SkyCoord`` made to find the frame class), the on region's mask over the whole
reference image and the exclusion mask reprojected onto all of it. This module does the
same arithmetic, operation for operation, on NumPy arrays and wcslib:

* :func:`reference_geometry`: ``WcsGeom.create`` with the frame object cached;
* :func:`lonlat_deg`, :func:`world_to_pixel`: ``SkyCoord.to_pixel`` and
  ``WCS.world_to_pixel`` for coordinates already in the WCS frame;
* :func:`north_offset_scale`: ``pixel_scale_angle_at_skycoord``'s scale
  (``directional_offset_by(0, 1 arcsec)`` with astropy's unit factors);
* :func:`circle_mask_pixels`: the pixels of ``geom.region_mask`` of a circle, on its
  bounding box only;
* :func:`excluded_pixels`: ``exclusion_mask.interp_to_geom(reference, fill_value=True)``
  evaluated only on the reference pixels of an annulus that can matter, cached per
  (mask content, reference WCS, annulus).

Where astropy would take another branch (coordinates near the poles or the 0/360
wrap, other frames or units) the functions return None and the caller uses gammapy's
own code. ``tests/test_region_finders.py`` checks the results bit for bit against
gammapy on real and random cases.
"""

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.wcs.utils import celestial_frame_to_wcs, wcs_to_celestial_frame
from gammapy.maps import MapCoord, WcsGeom

from ..cache.lru import LRUCache

__all__ = [
    "FAST_FRAMES",
    "circle_mask_pixels",
    "excluded_pixels",
    "lonlat_deg",
    "north_offset_scale",
    "pixel_to_world",
    "reference_geometry",
    "world_to_pixel",
]

#: Frames whose coordinates are used as they are (no frame attributes to compare).
FAST_FRAMES = ("icrs", "galactic")

# astropy's own conversion factors (a Quantity ufunc multiplies by these).
_D2R = u.deg.to(u.rad)
_R2D = u.rad.to(u.deg)
_ONE_ARCSEC_RAD = u.arcsec.to(u.rad, 1.0)
_A360_RAD = u.degree.to(u.rad, 360.0)
_WRAP_RAD = Angle(360.0 * u.deg).to_value(u.rad)
_PAD = Angle("0.3 deg")
_FRAMES = {}
_WCS_FRAMES = {}


def _frame(name):
    """The frame object ``WcsGeom.create`` makes from a throw-away SkyCoord, cached."""
    if name not in _FRAMES:
        _FRAMES[name] = SkyCoord(np.nan, np.nan, frame=name, unit="deg").frame
    return _FRAMES[name]


def lonlat_deg(skycoord, frame):
    """Longitude and latitude (deg) of a SkyCoord in ``frame``, as astropy reads them.

    Parameters
    ----------
    skycoord : `~astropy.coordinates.SkyCoord`
        Coordinate(s).
    frame : str
        Frame name of the WCS (``"icrs"`` or ``"galactic"``).

    Returns
    -------
    (lon, lat) : tuple of `numpy.ndarray` or None
        In deg; None when the coordinate is in another frame or not held as
        spherical angles in degrees (the caller then uses astropy).
    """
    if skycoord.frame.name != frame or frame not in FAST_FRAMES:
        return None
    data = skycoord.data
    lon, lat = getattr(data, "lon", None), getattr(data, "lat", None)
    if lon is None or lon.unit != u.deg or lat.unit != u.deg:
        return None
    return np.asarray(lon.value, dtype=float), np.asarray(lat.value, dtype=float)


def _center_lonlat(center, frame):
    """The rotation centre in ``frame`` (deg), as ``skycoord_to_lonlat`` reads it."""
    if not center.isscalar:
        return None
    if center.frame.name != frame:
        center = center.transform_to(frame)
    lon, lat = getattr(center.data, "lon", None), getattr(center.data, "lat", None)
    if lon is None:
        return None
    return lon.to_value(u.deg), lat.to_value(u.deg)


def pixel_to_world(wcs, frame, x, y):
    """``WCS.pixel_to_world(x, y)`` for a celestial WCS in ``frame`` (the same SkyCoord).

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Reference WCS (units deg).
    frame : str
        Its frame name.
    x, y : sequence of float
        0-based pixel coordinates.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
        Array of coordinates, built as astropy's high-level API builds them.
    """
    if frame not in _WCS_FRAMES:
        _WCS_FRAMES[frame] = wcs_to_celestial_frame(wcs)
    lon, lat = wcs.all_pix2world(np.asarray(x, dtype=float), np.asarray(y, dtype=float), 0)
    return SkyCoord(lon, lat, frame=_WCS_FRAMES[frame], unit=(u.deg, u.deg))


def world_to_pixel(wcs, lon, lat):
    """0-based pixel coordinates of (lon, lat) in deg: ``WCS.all_world2pix(lon, lat, 0)``."""
    x, y = wcs.all_world2pix(np.atleast_1d(lon), np.atleast_1d(lat), 0)
    return x, y


def north_offset_scale(wcs, lon, lat, x, y):
    """Pixel scale (arcsec per pixel) of ``regions``' ``pixel_scale_angle_at_skycoord``.

    Replays ``SkyCoord.directional_offset_by(0, 1 arcsec)`` (astropy's ``offset_by``
    with its unit conversion factors) on arrays, then ``1 arcsec / hypot(dx, dy)``.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Reference WCS.
    lon, lat : `numpy.ndarray`
        Coordinates (deg) in the WCS frame, as held by the SkyCoord.
    x, y : `numpy.ndarray`
        Their pixel coordinates.

    Returns
    -------
    scale : `numpy.ndarray` or None
        arcsec / pixel, or None where astropy would take another branch (within an
        arcsec of a pole, longitude wrap): the caller then uses astropy.
    """
    cos_a = np.cos(_ONE_ARCSEC_RAD)
    sin_a = np.sin(_ONE_ARCSEC_RAD)
    lat_rad = _D2R * lat
    cos_c = np.sin(lat_rad)
    sin_c = np.cos(lat_rad)
    cos_b_ = np.cos(0.0)
    sin_b_ = np.sin(0.0)
    cos_b = cos_c * cos_a + sin_c * sin_a * cos_b_
    xsin = sin_a * sin_b_ * sin_c
    xcos = cos_a - cos_b * cos_c
    big_a = np.arctan2(xsin, xcos)
    lon_rad = _D2R * lon + big_a
    if (
        np.any(sin_c < 1e-12)
        or np.any(big_a != 0.0)
        or np.any(lon_rad < _WRAP_RAD - _A360_RAD)
        or np.any(lon_rad >= _WRAP_RAD)
    ):
        return None
    lon2 = _R2D * lon_rad
    lat2 = _R2D * np.arcsin(cos_b)
    if np.any(lon2 >= 360.0) or np.any(lon2 < 0.0) or np.any(np.abs(lat2) > 90.0):
        return None
    x2, y2 = world_to_pixel(wcs, lon2, lat2)
    return 1.0 / np.hypot(x2 - x, y2 - y)


def _separation_deg(lon1, lat1, lon2, lat2):
    """``SkyCoord.separation`` (Vincenty, astropy's operation order), deg."""
    dlon = _D2R * (lon2 - lon1)
    sdlon, cdlon = np.sin(dlon), np.cos(dlon)
    slat1, slat2 = np.sin(_D2R * lat1), np.sin(_D2R * lat2)
    clat1, clat2 = np.cos(_D2R * lat1), np.cos(_D2R * lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    return _R2D * np.arctan2(np.hypot(num1, num2), denominator)


def reference_geometry(region_center, center, binsz):
    """gammapy's ``RegionsFinder._create_reference_geometry``, without its overheads.

    Parameters
    ----------
    region_center : `~astropy.coordinates.SkyCoord`
        Centre of the on region (its frame is the geometry's).
    center : `~astropy.coordinates.SkyCoord`
        Rotation centre (the pointing).
    binsz : `~astropy.coordinates.Angle`
        Pixel size.

    Returns
    -------
    geom : `~gammapy.maps.WcsGeom` or None
        Equal to gammapy's (same WCS, same shape); None outside the fast frames.
    center_lonlat : tuple of float or None
        The rotation centre in the geometry's frame (deg).
    """
    frame = region_center.frame.name
    region_lonlat = lonlat_deg(region_center, frame)
    if region_lonlat is None:
        return None, None
    center_lonlat = _center_lonlat(center, frame)
    if center_lonlat is None:
        return None, None
    lon, lat = (float(v) for v in center_lonlat)
    sep = _separation_deg(*(float(v) for v in region_lonlat), lon, lat)
    width = (4 * Angle(sep, "deg") + _PAD).deg
    binsz_deg = np.array(Angle(binsz, unit="deg").deg, ndmin=1, dtype=float)
    npix = np.rint(np.array(width, ndmin=1, dtype=float) / binsz_deg).astype(int)
    refpix = ((int(npix[0]) + 1) / 2.0, (int(npix[0]) + 1) / 2.0)
    wcs = celestial_frame_to_wcs(_frame(frame), projection="TAN")
    wcs.wcs.crpix = refpix
    wcs.wcs.crval = (lon, lat)
    wcs.wcs.cdelt = (-binsz_deg[0], binsz_deg[0])
    wcs.array_shape = int(npix[0]), int(npix[0])
    wcs.wcs.datfix()
    geom = WcsGeom(wcs, (npix, npix.copy()), cdelt=(binsz_deg, binsz_deg.copy()))
    return geom, (lon, lat)


def circle_mask_pixels(shape, cx, cy, radius):
    """Pixels (x, y) of ``geom.region_mask([circle])``: ``hypot(i - cx, j - cy) < r``.

    Parameters
    ----------
    shape : tuple of int
        Image shape (ny, nx).
    cx, cy, radius : float
        The circle in pixels (as ``CircleSkyRegion.to_pixel`` gives it).

    Returns
    -------
    x, y : `numpy.ndarray` of int
        Pixel indices inside, in gammapy's (row-major ``nonzero``) order.
    """
    ny, nx = shape
    x0, x1 = max(int(np.floor(cx - radius)) - 1, 0), min(int(np.ceil(cx + radius)) + 2, nx)
    y0, y1 = max(int(np.floor(cy - radius)) - 1, 0), min(int(np.ceil(cy + radius)) + 2, ny)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0, int), np.zeros(0, int)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = np.hypot(xx - cx, yy - cy) < radius
    return xx[inside], yy[inside]


class _ExcludedCache(LRUCache):
    """Excluded reference pixels per (mask, reference WCS, annulus); the mask compared."""

    def get(self, exclusion_mask, geom, center_pix, band):
        key = (
            id(exclusion_mask.data),
            id(exclusion_mask.geom),
            _wcs_key(geom),
            tuple(center_pix),
            tuple(band),
        )
        entry = self.lookup(key)
        if entry is not None:
            data, mask_geom, pixels = entry
            if mask_geom is exclusion_mask.geom and np.array_equal(data, exclusion_mask.data):
                return pixels
        pixels = _excluded_in_band(exclusion_mask, geom, center_pix, band)
        self.store(key, (exclusion_mask.data.copy(), exclusion_mask.geom, pixels))
        return pixels


def _wcs_key(geom):
    w = geom.wcs.wcs
    return (tuple(w.crval), tuple(w.cdelt), tuple(w.crpix), tuple(w.ctype), geom.data_shape)


_EXCLUDED = _ExcludedCache(maxsize=16)


def excluded_pixels(exclusion_mask, geom, center_pix, band):
    """Excluded pixels of the reference geometry within an annulus around the centre.

    Parameters
    ----------
    exclusion_mask : `~gammapy.maps.WcsNDMap`
        gammapy's exclusion mask (False = excluded).
    geom : `~gammapy.maps.WcsGeom`
        Reference geometry.
    center_pix : tuple of float
        Rotation centre in pixels.
    band : tuple of float
        (rmin, rmax) in pixels: only pixels whose distance to the centre lies within
        can touch a rotated region (the caller adds a margin).

    Returns
    -------
    x, y : `numpy.ndarray` of int
        Those pixels of ``~exclusion_mask.interp_to_geom(geom, fill_value=True)``
        (the same values: gammapy's ``pix_to_coord``/``get_by_coord`` on them).
    """
    return _EXCLUDED.get(exclusion_mask, geom, center_pix, band)


def _excluded_in_band(exclusion_mask, geom, center_pix, band):
    (cx, cy), (rmin, rmax) = center_pix, band
    ny, nx = geom.data_shape
    x0, x1 = max(int(np.floor(cx - rmax)), 0), min(int(np.ceil(cx + rmax)) + 1, nx)
    y0, y1 = max(int(np.floor(cy - rmax)), 0), min(int(np.ceil(cy + rmax)) + 1, ny)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dist = np.hypot(xx - cx, yy - cy)
    keep = (dist >= rmin) & (dist <= rmax)
    near = _near_excluded(exclusion_mask, geom, xx, yy, int(np.count_nonzero(keep)))
    if near is not None:
        keep &= near
    xs, ys = xx[keep].astype(float), yy[keep].astype(float)
    if xs.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    coords = MapCoord.create(
        data=geom.pix_to_coord((xs, ys)), frame=geom.frame, axis_names=geom.axes.names
    )
    values = exclusion_mask.get_by_coord(coords)
    values = np.nan_to_num(values, nan=True).astype(bool)
    out = ~values
    return xx[keep][out], yy[keep][out]


def _near_excluded(exclusion_mask, geom, xx, yy, n_band):
    """Which reference pixels lie near an excluded mask pixel (a safe pre-selection).

    A reference pixel takes the value of the mask pixel its centre falls in (nearest),
    so an excluded value needs an excluded mask pixel centre within half a mask pixel
    diagonal on the sky (<= 0.71 mask binsz for TAN and CAR masks), i.e. within
    ``0.71 * binsz_mask / (binsz_ref * cos(theta)**2)`` reference pixels (TAN pixels
    shrink as cos**2 of the distance from the tangent point). The excluded mask pixel
    centres are projected onto the reference grid and binned in cells of 1.5 times that
    distance plus a pixel; a reference pixel is kept when its cell or a neighbouring
    one holds one. Returns None (keep all) when the pre-selection would not pay or
    does not apply (other projections, projected centres not finite).
    """
    mask_geom = exclusion_mask.geom
    if mask_geom.projection not in ("TAN", "CAR"):
        return None
    ey, ex = np.nonzero(~exclusion_mask.data.astype(bool))
    if ex.size == 0:
        return np.zeros(xx.shape, dtype=bool)
    if ex.size > n_band:
        return None
    coords = MapCoord.create(
        data=mask_geom.pix_to_coord((ex.astype(float), ey.astype(float))),
        frame=mask_geom.frame,
    ).to_frame(geom.frame)
    px, py = geom.wcs.wcs_world2pix(coords.lon, coords.lat, 0)
    if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
        return None
    ny, nx = geom.data_shape
    binsz_ref = float(np.abs(geom.wcs.wcs.cdelt[1]))
    theta = np.deg2rad(binsz_ref * np.hypot(nx, ny) / 2 + binsz_ref)
    binsz_mask = float(np.max(np.abs(mask_geom.wcs.wcs.cdelt)))
    reach = 0.71 * binsz_mask / (binsz_ref * np.cos(theta) ** 2)
    cell = 1.5 * reach + 1.0
    inside = (px > -2 * cell) & (px < nx + 2 * cell) & (py > -2 * cell) & (py < ny + 2 * cell)
    if not np.any(inside):
        return np.zeros(xx.shape, dtype=bool)
    ncx, ncy = int(nx / cell) + 5, int(ny / cell) + 5
    occupied = np.zeros((ncy, ncx), dtype=bool)
    cx = np.floor((px[inside] + 2 * cell) / cell).astype(int)
    cy = np.floor((py[inside] + 2 * cell) / cell).astype(int)
    occupied[cy, cx] = True
    grown = occupied.copy()
    grown[1:, :] |= occupied[:-1, :]
    grown[:-1, :] |= occupied[1:, :]
    wide = grown.copy()
    wide[:, 1:] |= grown[:, :-1]
    wide[:, :-1] |= grown[:, 1:]
    qx = np.floor((xx + 2 * cell) / cell).astype(int)
    qy = np.floor((yy + 2 * cell) / cell).astype(int)
    return wide[qy, qx]
