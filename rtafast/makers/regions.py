"""Drop-in region finders: gammapy 2.1's ``ReflectedRegionsFinder`` and ``WobbleRegionsFinder``.

Same constructors, same ``run(region, center, exclusion_mask=None)`` and the same
answers (the same regions, bit for bit, in the same order, with the same returned
WCS), without gammapy's per-region astropy round trips. For a circular (or, for the
wobble finder, point) on region in ICRS or Galactic coordinates and an image
exclusion mask, ``run``:

1. builds the reference geometry as ``WcsGeom.create`` does (frame object cached);
2. converts the on region and the rotation centre to pixels with wcslib directly;
3. takes the on region's angular size from its pixels on its bounding box only;
4. reprojects the exclusion mask (gammapy's own ``pix_to_coord``/``get_by_coord``) only
   on the reference pixels of the annulus the rotated region sweeps, cached per
   (mask content, reference WCS, annulus): every window of a stream on one pointing
   reuses it;
5. runs gammapy's rotation loop with the same floating-point operations (the angle
   accumulated in the same order, ``np.matmul`` of the same 2x2 rotation), testing
   each candidate against the annulus' excluded pixels only;
6. converts all accepted regions to the sky in one vectorised pass (the same
   operations as ``CirclePixelRegion.to_sky``) and builds the region objects.

Other shapes, frames, units or masks with non-spatial axes run gammapy's code
(counted by :mod:`rtafast.dispatch` with a reason code).

The cross layout (3 off regions at 90, 180 and 270 deg from the on region) is
``WobbleRegionsFinder(n_off_regions=3)``; :func:`cross_regions_finder` makes it.
"""

import logging
from itertools import combinations

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from gammapy.makers import ReflectedRegionsFinder as _GammapyReflected
from gammapy.makers import WobbleRegionsFinder as _GammapyWobble
from regions import CirclePixelRegion, CircleSkyRegion, PixCoord, PointSkyRegion
from regions.core.metadata import RegionMeta, RegionVisual

from .. import dispatch
from ..cache.lru import LRUCache
from . import _region_masks as rm

__all__ = ["ReflectedRegionsFinder", "WobbleRegionsFinder", "cross_regions_finder"]

# gammapy's logger: its tests check the warning's origin.
log = logging.getLogger("gammapy.makers.background.reflected")

_TWO_PI = 2 * np.pi  # gammapy's FULL_CIRCLE in rad
_ARCSEC_PER_PIX = u.arcsec / u.pix


class _Plan:
    """The on region and the rotation centre on the reference geometry (pixels)."""

    __slots__ = ("geom", "cx", "cy", "rx", "ry", "r_pix", "kind")


def _delegation_reason(region, exclusion_mask, kinds):
    """Why the fast path does not apply (None when it does)."""
    kind = "circle" if type(region) is CircleSkyRegion else "point"
    if type(region) not in (CircleSkyRegion, PointSkyRegion) or kind not in kinds:
        return "region-shape"
    if region.center.frame.name not in rm.FAST_FRAMES:
        return "region-frame"
    if exclusion_mask is not None and not (
        exclusion_mask.geom.is_image and getattr(exclusion_mask.geom, "is_regular", False)
    ):
        return "exclusion-mask-geometry"
    return None


def _plan_key(region, center, binsz):
    """Value key of (on region, rotation centre, binsz), or None (not cached)."""
    rdata, cdata = region.center.data, center.data
    if not hasattr(cdata, "lon") or not center.isscalar or center.frame.name not in rm.FAST_FRAMES:
        return None
    radius = getattr(region, "radius", None)
    return (
        type(region),
        region.center.frame.name,
        float(rdata.lon.value),
        float(rdata.lat.value),
        None if radius is None else (float(radius.value), radius.unit.to_string()),
        center.frame.name,
        float(cdata.lon.to_value(u.deg)),
        float(cdata.lat.to_value(u.deg)),
        float(binsz.to_value(u.deg)),
    )


_PLANS = LRUCache(maxsize=64)


def _get_plan(region, center, binsz):
    """The plan of :func:`_make_plan`, cached per (region, centre, binsz) values."""
    key = _plan_key(region, center, binsz)
    if key is None:
        return _make_plan(region, center, binsz)
    plan = _PLANS.lookup(key)
    if plan is None:
        plan = _make_plan(region, center, binsz)
        _PLANS.store(key, plan if plan is not None else False)
    return plan or None


def _make_plan(region, center, binsz):
    """Pixels of the on region and rotation centre, or None (astropy would differ)."""
    geom, center_lonlat = rm.reference_geometry(region.center, center, binsz)
    if geom is None:
        return None
    wcs = geom.wcs
    lonlat = rm.lonlat_deg(region.center, geom.frame)
    if lonlat is None:
        return None
    plan = _Plan()
    plan.geom = geom
    cx, cy = rm.world_to_pixel(wcs, *center_lonlat)
    rx, ry = rm.world_to_pixel(wcs, *lonlat)
    plan.cx, plan.cy, plan.rx, plan.ry = cx[0], cy[0], rx[0], ry[0]
    if isinstance(region, PointSkyRegion):
        plan.kind, plan.r_pix = "point", 0.0
        return plan
    scale = rm.north_offset_scale(wcs, *lonlat, rx, ry)
    if scale is None:
        return None
    plan.kind = "circle"
    plan.r_pix = (region.radius / u.Quantity(scale[0], _ARCSEC_PER_PIX)).to(u.pix).value
    return plan


def _rotate(plan, angle):
    """``PixCoord.rotate`` of the on region's centre: the same operations, floats."""
    dx, dy = plan.rx - plan.cx, plan.ry - plan.cy
    cosa, sina = np.cos(angle), np.sin(angle)
    vec = np.matmul(np.array([[cosa, -sina], [sina, cosa]]), np.array([dx, dy]))
    return plan.cx + vec[0], plan.cy + vec[1]


def _excluded(plan, exclusion_mask):
    """Excluded reference pixels that a rotated on region can touch (x, y arrays)."""
    if exclusion_mask is None:
        return None
    dist = float(np.hypot(plan.rx - plan.cx, plan.ry - plan.cy))
    reach = plan.r_pix + 2.0 if plan.kind == "circle" else 2.0
    band = (max(dist - reach, 0.0), dist + reach)
    xs, ys = rm.excluded_pixels(exclusion_mask, plan.geom, (plan.cx, plan.cy), band)
    return (xs, ys) if xs.size else None


def _hits(plan, excluded, x, y):
    """gammapy's exclusion test of the region rotated to centre (x, y)."""
    if excluded is None:
        return False
    sep = np.hypot(excluded[0] - x, excluded[1] - y)
    limit = plan.r_pix if plan.kind == "circle" else 1
    return bool(np.any(sep < limit))


def _to_sky(region, plan, xs, ys):
    """``region_pix.rotate(...).to_sky(wcs)`` of each centre, in one vectorised pass."""
    if not xs:
        return []
    wcs = plan.geom.wcs
    centers = rm.pixel_to_world(wcs, plan.geom.frame, xs, ys)
    if plan.kind == "point":
        return [
            PointSkyRegion(centers[i], meta=region.meta.copy(), visual=region.visual.copy())
            for i in range(len(xs))
        ]
    lonlat = rm.lonlat_deg(centers, plan.geom.frame)
    scale = None
    if lonlat is not None:
        px, py = rm.world_to_pixel(wcs, *lonlat)
        scale = rm.north_offset_scale(wcs, *lonlat, px, py)
    if scale is None or not np.all(plan.r_pix * scale > 0):
        return [
            CirclePixelRegion(
                PixCoord(x, y), plan.r_pix, meta=region.meta.copy(), visual=region.visual.copy()
            ).to_sky(wcs)
            for x, y in zip(xs, ys, strict=True)
        ]
    radii = Angle(plan.r_pix * scale, "arcsec")
    return [_circle(centers[i], radii[i], region) for i in range(len(xs))]


def _circle(center, radius, region):
    """``CircleSkyRegion(center, radius, meta=..., visual=...)`` without re-validation.

    The centre is a scalar SkyCoord from ``pixel_to_world`` and the radius a positive
    scalar Angle (checked for all regions at once by the caller): the object is the
    one the constructor makes (``tests/test_region_finders.py`` compares them).
    """
    out = CircleSkyRegion.__new__(CircleSkyRegion)
    out.__dict__.update(
        center=center,
        radius=radius,
        meta=RegionMeta(region.meta.copy()) if region.meta else RegionMeta(),
        visual=RegionVisual(region.visual.copy()) if region.visual else RegionVisual(),
    )
    return out


class ReflectedRegionsFinder(_GammapyReflected):
    """gammapy's ``ReflectedRegionsFinder`` (same constructor and answers), faster.

    Parameters
    ----------
    angle_increment : `~astropy.coordinates.Angle`, optional
        Rotation applied when a region falls in an excluded region. Default '0.1 rad'.
    min_distance : `~astropy.coordinates.Angle`, optional
        Minimum rotation between two consecutive off regions. Default '0 rad'.
    min_distance_input : `~astropy.coordinates.Angle`, optional
        Minimum rotation between the on region and the first off region.
        Default '0.1 rad'.
    max_region_number : int, optional
        Maximum number of off regions. Default 10000.
    binsz : `~astropy.coordinates.Angle`, optional
        Pixel size of the reference geometry. Default '0.01 deg'.
    """

    def run(self, region, center, exclusion_mask=None):
        """Find reflected regions (gammapy's ``run``; see the module docstring).

        Parameters
        ----------
        region : `~regions.SkyRegion`
            On region to rotate.
        center : `~astropy.coordinates.SkyCoord`
            Rotation centre (the pointing).
        exclusion_mask : `~gammapy.maps.WcsNDMap`, optional
            Exclusion mask (False = excluded).

        Returns
        -------
        regions : list of `~regions.SkyRegion`
            Off regions, as gammapy finds them.
        wcs : `~astropy.wcs.WCS`
            WCS of the reference geometry.
        """
        if isinstance(region, PointSkyRegion):
            raise TypeError(
                "ReflectedRegionsFinder does not work with PointSkyRegion. "
                "Use WobbleRegionsFinder instead."
            )
        reason = _delegation_reason(region, exclusion_mask, ("circle",))
        plan = None if reason else _get_plan(region, center, self.binsz)
        if plan is None:
            dispatch.record("ReflectedRegionsFinder.run", "gammapy", reason or "coordinates")
            return super().run(region, center, exclusion_mask)
        angle_min, angle_max = self._angle_range_fast(region, plan)
        excluded = _excluded(plan, exclusion_mask)
        xs, ys = [], []
        angle = angle_min + self.min_distance_input.to_value(u.rad)
        increment = self.angle_increment.to_value(u.rad)
        while angle < angle_max:
            x, y = _rotate(plan, angle)
            if not _hits(plan, excluded, x, y):
                xs.append(x)
                ys.append(y)
                if len(xs) >= self.max_region_number:
                    break
                angle += angle_min
            else:
                angle += increment
        dispatch.record("ReflectedRegionsFinder.run", "fast")
        return _to_sky(region, plan, xs, ys), plan.geom.wcs.deepcopy()

    def _angle_range_fast(self, region, plan):
        """gammapy's ``_get_angle_range`` (rad floats) from the on region's pixels."""
        px, py = rm.circle_mask_pixels(plan.geom.data_shape, plan.rx, plan.ry, plan.r_pix)
        if px.size == 0:
            raise ValueError(
                f"on region {region!r} covers no pixel of the reference geometry "
                f"(binsz {self.binsz}): its radius is below the pixel size"
            )
        angles = np.arctan2(plan.cx - px, plan.cy - py)
        size = np.max(angles) - np.min(angles)
        if size > np.pi:
            wrapped = Angle(angles, "rad").wrap_at(0 * u.rad)
            size = (np.max(wrapped) - np.min(wrapped)).to_value(u.rad)
        angle_min = size + self.min_distance.to_value(u.rad)
        angle_max = _TWO_PI - angle_min - self.min_distance_input.to_value(u.rad)
        return angle_min, angle_max


class WobbleRegionsFinder(_GammapyWobble):
    """gammapy's ``WobbleRegionsFinder`` (same constructor and answers), faster.

    ``n_off_regions`` regions at ``360 deg / (n_off_regions + 1)`` steps around the
    rotation centre; ``n_off_regions=3`` is the cross layout (90, 180, 270 deg).

    Parameters
    ----------
    n_off_regions : int
        Number of off regions (fewer when the exclusion mask removes some).
    binsz : `~astropy.coordinates.Angle`, optional
        Pixel size of the reference geometry. Default 0.01 deg.
    """

    def run(self, region, center, exclusion_mask=None):
        """Find the off regions (gammapy's ``run``).

        Parameters and returns as :meth:`ReflectedRegionsFinder.run`; no regions if two
        of them overlap (with gammapy's warning).
        """
        reason = _delegation_reason(region, exclusion_mask, ("circle", "point"))
        plan = None if reason else _get_plan(region, center, self.binsz)
        if plan is None:
            dispatch.record("WobbleRegionsFinder.run", "gammapy", reason or "coordinates")
            return super().run(region, center, exclusion_mask)
        excluded = _excluded(plan, exclusion_mask)
        n_positions = self.n_off_regions + 1
        increment = _TWO_PI / n_positions
        xs, ys = [], []
        for i in range(1, n_positions):
            x, y = _rotate(plan, i * increment)
            if not _hits(plan, excluded, x, y):
                xs.append(x)
                ys.append(y)
        dispatch.record("WobbleRegionsFinder.run", "fast")
        if plan.kind == "circle" and _overlapping(plan, xs, ys):
            log.warning("Found overlapping off regions, returning no regions")
            return [], plan.geom.wcs.deepcopy()
        return _to_sky(region, plan, xs, ys), plan.geom.wcs.deepcopy()


def _overlapping(plan, xs, ys):
    """gammapy's ``_are_regions_overlapping`` on the masks' overlap with the image."""
    shape = plan.geom.data_shape
    cut = []
    for x, y in zip(xs, ys, strict=True):
        mask = CirclePixelRegion(PixCoord(x, y), plan.r_pix).to_mask()
        slices = mask.get_overlap_slices(shape)
        if slices[0] is None:
            cut.append(None)
            continue
        large, small = slices
        cut.append((large[0].start, large[1].start, mask.data[small] > 0))
    for a, b in combinations(cut, 2):
        if a is None or b is None:
            continue
        y0, x0 = max(a[0], b[0]), max(a[1], b[1])
        y1 = min(a[0] + a[2].shape[0], b[0] + b[2].shape[0])
        x1 = min(a[1] + a[2].shape[1], b[1] + b[2].shape[1])
        if y1 <= y0 or x1 <= x0:
            continue
        part_a = a[2][y0 - a[0] : y1 - a[0], x0 - a[1] : x1 - a[1]]
        part_b = b[2][y0 - b[0] : y1 - b[0], x0 - b[1] : x1 - b[1]]
        if np.any(part_a & part_b):
            return True
    return False


def cross_regions_finder(binsz=0.01 * u.deg):
    """The cross layout: 3 off regions at 90, 180 and 270 deg from the on region.

    Parameters
    ----------
    binsz : `~astropy.coordinates.Angle`, optional
        Pixel size of the reference geometry.

    Returns
    -------
    finder : `WobbleRegionsFinder`
        ``WobbleRegionsFinder(n_off_regions=3, binsz=binsz)``.
    """
    return WobbleRegionsFinder(n_off_regions=3, binsz=binsz)
