"""What the reflected maker reuses between calls on one pointing (cached by value).

* the region finder's answer for the same finder settings, on region, pointing and
  exclusion mask (the mask's content compared, as ``rtafast.makers._region_masks``);
* the off regions' ``RegionGeom`` (``RegionGeom.from_regions``) per energy axis.

Only finders whose answer depends on nothing else are cached (gammapy's and rtafast's
``ReflectedRegionsFinder`` and ``WobbleRegionsFinder``); entries hand out new lists,
the region objects and WCS are shared (nothing in gammapy's maker changes them).
"""

import astropy.units as u
import numpy as np
from gammapy.makers import ReflectedRegionsFinder as _GammapyReflected
from gammapy.makers import WobbleRegionsFinder as _GammapyWobble
from gammapy.maps import RegionGeom

from ..cache.lru import LRUCache
from .compiled import region_key, wcs_key

__all__ = ["FOUND", "GEOMS", "found_regions", "off_geometry"]

#: Finder answers per (finder settings, on region, pointing, mask identity).
FOUND = LRUCache(maxsize=64)
#: Off-region geometries per (off regions, WCS, energy axis).
GEOMS = LRUCache(maxsize=64)


def _cacheable(finder):
    try:
        from ..makers.regions import ReflectedRegionsFinder, WobbleRegionsFinder
    except ImportError:  # pragma: no cover - the fast finders are part of rtafast
        ReflectedRegionsFinder = WobbleRegionsFinder = ()
    kinds = (ReflectedRegionsFinder, WobbleRegionsFinder, _GammapyReflected, _GammapyWobble)
    return type(finder) in {k for k in kinds if isinstance(k, type)}


def _value_key(value):
    if isinstance(value, u.Quantity):
        return (value.value.tobytes(), value.shape, value.unit)
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def _finder_key(finder):
    return (type(finder), tuple(sorted((k, _value_key(v)) for k, v in vars(finder).items())))


def _center_key(center):
    if not center.isscalar:
        return None
    data = center.data
    lon, lat = data.lon, data.lat
    return (center.frame.name, float(lon.value), lon.unit, float(lat.value), lat.unit)


def found_regions(finder, region, center, exclusion_mask):
    """``finder.run(region=region, center=center, exclusion_mask=exclusion_mask)``, cached.

    Returns
    -------
    regions : list of `~regions.SkyRegion`
        A new list (shared region objects).
    wcs : `~astropy.wcs.WCS`
    """
    on_key, center_key = region_key(region), _center_key(center)
    if not _cacheable(finder) or on_key is None or center_key is None:
        return finder.run(region=region, center=center, exclusion_mask=exclusion_mask)
    mask_ids = None
    if exclusion_mask is not None:
        mask_ids = (id(exclusion_mask.data), id(exclusion_mask.geom))
    key = (_finder_key(finder), on_key, center_key, mask_ids)
    entry = FOUND.lookup(key)
    if entry is not None:
        regions, wcs, mask_data, mask_geom = entry
        if exclusion_mask is None or (
            mask_geom is exclusion_mask.geom and np.array_equal(mask_data, exclusion_mask.data)
        ):
            return list(regions), wcs
    regions, wcs = finder.run(region=region, center=center, exclusion_mask=exclusion_mask)
    mask_data = None if exclusion_mask is None else np.array(exclusion_mask.data, copy=True)
    mask_geom = None if exclusion_mask is None else exclusion_mask.geom
    FOUND.store(key, (tuple(regions), wcs, mask_data, mask_geom))
    return list(regions), wcs


def _axis_key(axis):
    return (axis.name, axis.interp, str(axis.unit), axis.node_type, tuple(axis.edges.value))


def off_geometry(regions_off, wcs, energy_axis):
    """``RegionGeom.from_regions(regions=regions_off, axes=[energy_axis], wcs=wcs)``, cached."""
    keys = [region_key(r) for r in regions_off]
    if any(k is None for k in keys):
        return RegionGeom.from_regions(regions=regions_off, axes=[energy_axis], wcs=wcs)
    key = (tuple(keys), wcs_key(wcs), _axis_key(energy_axis))
    return GEOMS.get_or_compute(
        key, lambda: RegionGeom.from_regions(regions=regions_off, axes=[energy_axis], wcs=wcs)
    )
