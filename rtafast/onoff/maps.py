"""On/off counts from a counts cube: the pixels whose centres fall in each region.

gammapy's ``WcsNDMap.to_region_nd_map(region, func=np.nansum)`` sums the pixels of the
cube whose centres the region contains (``WcsGeom.region_mask``: the region drawn in
the map's own WCS). :class:`MapRegionCounter` takes those masks once per geometry and
sums the pixels on the backend for every new cube (e.g. each window of a stream).
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.maps import Map, WcsGeom
from regions import CircleSkyRegion

from rtafast_kernels import resolve_backend

__all__ = ["MapRegionCounter", "counts_in_regions", "region_masks"]

#: The offset ``regions`` takes to measure the pixel scale at a position (its default).
_SCALE_OFFSET = 1 * u.arcsec


def region_masks(image, regions):
    """gammapy's ``image.region_mask([region])`` of every region, as 2D bool arrays.

    Circles take the arithmetic of ``regions``' ``CircleSkyRegion.to_pixel`` (pixel
    centre and the pixel scale northwards over 1 arcsec at the centre) for all centres
    at once, and test the pixels of their bounding box only (``hypot < radius``, as
    ``CirclePixelRegion.contains``): ~0.3 ms per circle against gammapy's ~5 ms. Other
    shapes go through gammapy.
    """
    masks = [None] * len(regions)
    circles = [k for k, region in enumerate(regions) if type(region) is CircleSkyRegion]
    if circles:
        found = _circle_masks(image, [regions[k] for k in circles])
        for k, mask in zip(circles, found, strict=True):
            masks[k] = mask
    for k, region in enumerate(regions):
        if masks[k] is None:
            masks[k] = image.region_mask([region]).data
    return masks


def _circle_masks(image, circles):
    wcs = image.wcs
    centers = SkyCoord([circle.center for circle in circles])
    x, y = wcs.world_to_pixel(centers)
    x_north, y_north = wcs.world_to_pixel(centers.directional_offset_by(0.0, _SCALE_OFFSET))
    scale = _SCALE_OFFSET.to_value(u.arcsec) / np.hypot(x_north - x, y_north - y)
    ny, nx = image.data_shape[-2:]
    masks = []
    for k, circle in enumerate(circles):
        radius = circle.radius.to_value(u.arcsec) / scale[k]
        mask = np.zeros((ny, nx), bool)
        lo_x, hi_x = max(int(np.floor(x[k] - radius)), 0), min(int(np.ceil(x[k] + radius)) + 1, nx)
        lo_y, hi_y = max(int(np.floor(y[k] - radius)), 0), min(int(np.ceil(y[k] + radius)) + 1, ny)
        if lo_x < hi_x and lo_y < hi_y:
            xs = np.arange(lo_x, hi_x, dtype=float)
            ys = np.arange(lo_y, hi_y, dtype=float)[:, None]
            mask[lo_y:hi_y, lo_x:hi_x] = np.hypot(x[k] - xs, y[k] - ys) < radius
        masks.append(mask)
    return masks


class MapRegionCounter:
    """Sums of a counts cube in an on region and off regions (pixel centres inside).

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        The cube's geometry (one non-spatial axis).
    on_region : `~regions.SkyRegion`
    off_regions : list of `~regions.SkyRegion`
    array_backend : str or backend, optional

    Raises
    ------
    TypeError
        ``geom`` is not a ``WcsGeom``.
    ValueError
        No off region, more than one non-spatial axis, or a region containing no
        pixel centre of the map (outside the map: the message names it).
    """

    def __init__(self, geom, on_region, off_regions, array_backend=None):
        if not isinstance(geom, WcsGeom):
            raise TypeError(
                f"counts_in_regions needs a WcsGeom counts cube, got {type(geom).__name__}"
            )
        if len(geom.axes) != 1:
            raise ValueError(f"the cube must have one non-spatial axis, got {geom.axes.names}")
        off_regions = list(off_regions)
        if not off_regions:
            raise ValueError("at least one off region is needed (got none)")
        self.geom = geom
        self.backend = resolve_backend(array_backend)
        image = geom.to_image()
        masks = []
        regions = [on_region, *off_regions]
        for k, mask in enumerate(region_masks(image, regions)):
            region = regions[k]
            if not mask.any():
                name = "the on region" if k == 0 else f"off region {k - 1}"
                raise ValueError(f"{name} ({region}) contains no pixel centre of the map")
            masks.append(mask.ravel())
        masks.append(np.any(masks[1:], axis=0))
        self._pixels = [self.backend.upload(np.flatnonzero(m).astype(np.int64)) for m in masks]

    def counts(self, counts):
        """(n_regions + 1, n_energy) sums: on, each off region, the off union (host array).

        ``counts``: the cube (a Map of this geometry or its data, host or backend array).
        NaN pixels are skipped as ``np.nansum`` does.
        """
        data = counts.data if isinstance(counts, Map) else counts  # a CuPy array's .data
        # is its memory pointer
        if tuple(data.shape) != tuple(self.geom.data_shape):
            raise ValueError(
                f"counts shape {tuple(data.shape)} != geometry's {self.geom.data_shape}"
            )
        xp = self.backend.xp
        flat = xp.asarray(data).reshape(data.shape[0], -1)
        rows = [xp.nansum(flat[:, pixels], axis=1) for pixels in self._pixels]
        return np.asarray(self.backend.to_numpy(xp.stack(rows)), dtype=np.float64)


def counts_in_regions(counts_map, on_region, off_regions, array_backend=None):
    """On, per-off-region and off-union sums of a counts cube (see :class:`MapRegionCounter`)."""
    counter = MapRegionCounter(counts_map.geom, on_region, off_regions, array_backend)
    return counter.counts(counts_map)
