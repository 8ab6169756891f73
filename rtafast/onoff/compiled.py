"""Compiled circles of an on region and its off regions, cached by value.

Compiling the circles (:func:`.circles.circle_rows_of`: wcslib's pixel arithmetic on arrays,
the check against it, the screens) costs ~2.5 ms; on one pointing every call (each bunch's
counter, each run of the reflected maker) has the same regions and WCSs, so the result
is kept in a least-recently-used cache keyed by the regions' and WCSs' values.
"""

from dataclasses import dataclass

import numpy as np
from astropy.coordinates import ICRS
from astropy.wcs.utils import wcs_to_celestial_frame

from rtafast_kernels.regions.plane import screen_params_bands

from ..cache.lru import LRUCache
from .circles import BAND_DEG, bounds_of, circle_rows_of, finish_rows

__all__ = ["CompiledCircles", "compiled_circles", "region_key", "wcs_key", "COMPILED"]


@dataclass(frozen=True)
class CompiledCircles:
    """The kernel's view of the circles (shared through the cache: never modified).

    Attributes
    ----------
    rows : dict
        ``{band name: (n_circles, CIRCLE_SIZE) rows}`` (screening RA relative to
        ``bounds[B_RA]``).
    bounds : ndarray
        RA/Dec box of every circle.
    screens : dict
        ``{band name: float32 screen}`` (:func:`rtafast_kernels.regions.plane.screen_params`).
    frame_change : bool
        Whether a WCS is not in ICRS (float32 RA/Dec then need the wider band).
    """

    rows: dict
    bounds: np.ndarray
    screens: dict
    frame_change: bool


def wcs_key(wcs):
    """Value key of a celestial WCS (what the pixel-circle test depends on)."""
    w = wcs.wcs
    return (
        tuple(w.ctype),
        tuple(float(v) for v in w.crval),
        tuple(float(v) for v in w.crpix),
        tuple(float(v) for v in w.cdelt),
        tuple(float(v) for v in w.get_pc().ravel()),
        float(w.lonpole),
        float(w.latpole),
        str(w.radesys),
        float(w.equinox) if np.isfinite(w.equinox) else None,
    )


def region_key(region):
    """Value key of a sky region (type, frame, centre, radius, include), or None."""
    center = getattr(region, "center", None)
    radius = getattr(region, "radius", None)
    if center is None or radius is None or not center.isscalar:
        return None
    data = center.data
    lon, lat = data.lon, data.lat
    return (
        type(region),
        center.frame.name,
        float(lon.value),
        lon.unit,
        float(lat.value),
        lat.unit,
        float(radius.value),
        radius.unit,
        bool(region.meta.get("include", True)),
    )


def _compile(on_region, off_regions, on_wcs, off_wcs):
    rows = circle_rows_of([([on_region], on_wcs), (off_regions, off_wcs)], BAND_DEG)
    frame_change = any(not isinstance(wcs_to_celestial_frame(w), ICRS) for w in (on_wcs, off_wcs))
    bounds = bounds_of(rows["float32-frame"])
    rows = {name: finish_rows(r, bounds[0]) for name, r in rows.items()}
    names = list(rows)
    screens = dict(zip(names, screen_params_bands([rows[n].T for n in names], bounds), strict=True))
    return CompiledCircles(rows, bounds, screens, frame_change)


#: Compiled circles per (regions, WCSs) values.
COMPILED = LRUCache(maxsize=32)


def compiled_circles(on_region, off_regions, on_wcs, off_wcs):
    """:class:`CompiledCircles` of the regions (cached by value).

    Raises
    ------
    CircleProblem
        As :func:`.circles.circle_rows_of` (not cached).
    """
    keys = [region_key(r) for r in (on_region, *off_regions)]
    if any(k is None for k in keys):
        return _compile(on_region, off_regions, on_wcs, off_wcs)
    key = (tuple(keys), wcs_key(on_wcs), wcs_key(off_wcs))
    return COMPILED.get_or_compute(key, lambda: _compile(on_region, off_regions, on_wcs, off_wcs))
