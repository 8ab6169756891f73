"""Sky circles in a WCS's pixel plane, for many circles at once, with wcslib on arrays.

gammapy's ``CircleSkyRegion.contains(skycoord, wcs)`` uses regions 0.11's
``CircleSkyRegion.to_pixel(wcs)``: ``pixel_scale_angle_at_skycoord`` (the centre's pixel
and the pixel distance to a point 1 arcsec north of it, astropy's ``offset_by``), each
through ``wcs.world_to_pixel`` (astropy's frame transform into the WCS's frame, then
wcslib's ``s2p``). :func:`pixel_circles` computes the same numbers for all circles with
one ``Wcsprm.s2p`` call on an array (and one astropy frame transform when the regions'
frame is not the WCS's); :func:`pixels_to_icrs` maps pixels to ICRS with one
``Wcsprm.p2s`` call (astropy's ``pixel_to_world``). No per-region astropy objects.
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import (
    ICRS,
    SkyCoord,
    SphericalRepresentation,
    UnitSphericalRepresentation,
)
from astropy.wcs.utils import wcs_to_celestial_frame

__all__ = [
    "ICRS_FRAME",
    "WcsProblem",
    "celestial_axes",
    "centres_of",
    "pixel_circles",
    "pixels_to_icrs",
    "transform",
    "unit_vectors",
]

_D2R = u.deg.to(u.rad)
_R2D = u.rad.to(u.deg)
#: The ICRS frame (made once: frames cost ~30 us each).
ICRS_FRAME = ICRS()
#: regions' offset to the north of the centre for the pixel scale: 1 arcsec (rad).
_OFFSET_RAD = u.arcsec.to(u.rad)


class WcsProblem(ValueError):
    """wcslib cannot map the circles (a point outside the projection, a distorted WCS)."""


def centres_of(regions):
    """Centres (deg, the regions' frame) and radii (deg) of circle regions.

    Returns
    -------
    lon, lat, radius : ndarray
        Degrees.
    frame : `~astropy.coordinates.BaseCoordinateFrame`
        The first region's frame (without data).
    """
    n = len(regions)
    lon, lat, radius = np.empty(n), np.empty(n), np.empty(n)
    for i, region in enumerate(regions):
        center = region.center
        data = center.data
        if not isinstance(data, (UnitSphericalRepresentation, SphericalRepresentation)):
            data = center.spherical
        lon[i] = data.lon.to_value(u.deg)
        lat[i] = data.lat.to_value(u.deg)
        radius[i] = region.radius.to_value(u.deg)
    return lon, lat, radius, regions[0].center.frame.replicate_without_data()


def _north(lon, lat):
    """astropy's ``offset_by(lon, lat, posang=0, distance=1 arcsec)`` (deg), step by step
    in astropy's order and unit conversions (the longitude goes through radians)."""
    lon_r, lat_r = lon * _D2R, lat * _D2R
    cos_a, sin_a = np.cos(_OFFSET_RAD), np.sin(_OFFSET_RAD)
    cos_c, sin_c = np.sin(lat_r), np.cos(lat_r)
    cos_b = cos_c * cos_a + sin_c * sin_a  # cos(posang) = 1
    turn = np.arctan2(0.0 * sin_c, cos_a - cos_b * cos_c)  # sin(posang) = 0
    turn = np.where(sin_c < 1e-12, (np.pi / 2) * (1.0 + cos_c), turn)  # astropy's poles
    out = lon_r + turn
    a360 = 360.0 * _D2R
    wrap = (out < 0.0) | (out >= a360)
    if wrap.any():
        out = out - (out // a360) * a360 * wrap
    return out * _R2D, np.arcsin(cos_b) * _R2D


def _same_frame(frame, other):
    if isinstance(frame, ICRS) and isinstance(other, ICRS):
        return True
    return frame.is_equivalent_frame(other)


def transform(lon, lat, frame, target):
    """(lon, lat) deg from ``frame`` to ``target`` (one astropy call; none if equal)."""
    if _same_frame(frame, target):
        return lon, lat
    coord = SkyCoord(lon, lat, unit="deg", frame=frame).transform_to(target)
    sph = coord.represent_as(UnitSphericalRepresentation)
    return sph.lon.to_value(u.deg), sph.lat.to_value(u.deg)


def celestial_axes(wcs):
    """Indices of the longitude and latitude axes of a celestial WCS."""
    w = wcs.wcs
    return int(w.lng), int(w.lat)


def _s2p(wcs, lon, lat):
    lng, lat_axis = celestial_axes(wcs)
    world = np.empty((lon.size, 2))
    world[:, lng], world[:, lat_axis] = lon.ravel(), lat.ravel()
    try:
        pix = wcs.wcs.s2p(world, 0)["pixcrd"]
    except Exception as error:  # wcslib's InvalidCoordinateError and kin
        raise WcsProblem(f"wcslib cannot project the circles' points: {error}") from None
    return pix[:, 0].reshape(lon.shape), pix[:, 1].reshape(lon.shape)


def pixel_circles(regions, wcs, target=None):
    """Pixel centres and radii of ``region.to_pixel(wcs)`` for many circles at once.

    Parameters
    ----------
    regions : list of `~regions.CircleSkyRegion`
        In one frame.
    wcs : `~astropy.wcs.WCS`
        Celestial, no distortion.
    target : `~astropy.coordinates.BaseCoordinateFrame`, optional
        The WCS's celestial frame (default: ``wcs_to_celestial_frame(wcs)``).

    Returns
    -------
    lon, lat : ndarray
        Centres (deg) in the regions' frame.
    frame : `~astropy.coordinates.BaseCoordinateFrame`
    cx, cy, r_pix : ndarray
        Centres and radii in pixels (0-based), as regions 0.11.

    Raises
    ------
    WcsProblem
        If wcslib cannot project a point (or the WCS has distortions).
    """
    if wcs.has_distortion:
        raise WcsProblem("the WCS has distortions (SIP or lookup tables)")
    lon, lat, radius, frame = centres_of(regions)
    north_lon, north_lat = _north(lon, lat)
    target = wcs_to_celestial_frame(wcs) if target is None else target
    both_lon, both_lat = transform(
        np.concatenate([lon, north_lon]), np.concatenate([lat, north_lat]), frame, target
    )
    x, y = _s2p(wcs, both_lon, both_lat)
    n = len(regions)
    cx, cy = x[:n], y[:n]
    per_pixel = np.hypot(x[n:] - cx, y[n:] - cy)  # pixels per arcsec
    # regions: (radius / (1 arcsec / hypot)).to(pix), the radius in arcsec
    r_pix = (radius * 3600.0) / (1.0 / per_pixel)
    if not (np.all(np.isfinite(cx)) and np.all(np.isfinite(cy)) and np.all(r_pix > 0)):
        raise WcsProblem("wcslib gives no finite pixel circle for a region")
    return lon, lat, frame, cx, cy, r_pix


def pixels_to_icrs(wcs, x, y, frame=None):
    """ICRS (RA, Dec) in deg of pixels (0-based): astropy's ``pixel_to_world().icrs``.

    ``frame``: the WCS's celestial frame (default: ``wcs_to_celestial_frame(wcs)``).
    """
    frame = wcs_to_celestial_frame(wcs) if frame is None else frame
    pix = np.empty((x.size, 2))
    pix[:, 0], pix[:, 1] = x.ravel(), y.ravel()
    try:
        world = wcs.wcs.p2s(pix, 0)["world"]
    except Exception as error:
        raise WcsProblem(f"wcslib cannot map the circles' pixels to the sky: {error}") from None
    lng, lat_axis = celestial_axes(wcs)
    ra, dec = transform(world[:, lng], world[:, lat_axis], frame, ICRS_FRAME)
    return ra.reshape(x.shape), dec.reshape(x.shape)


def unit_vectors(lon, lat, frame=None):
    """ICRS unit vectors, shape ``(3,) + lon.shape``, of (lon, lat) deg in ``frame``."""
    if frame is not None:
        lon, lat = transform(np.asarray(lon), np.asarray(lat), frame, ICRS_FRAME)
    lon_r, lat_r = np.asarray(lon) * _D2R, np.asarray(lat) * _D2R
    cos_lat = np.cos(lat_r)
    return np.stack([cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r), np.sin(lat_r)])
