"""On/off counts from a counts cube: the pixels whose centres fall in each region.

gammapy's ``WcsNDMap.to_region_nd_map(region, func=np.nansum)`` sums the pixels of the
cube whose centres the region contains (``WcsGeom.region_mask``: the region drawn in
the map's own WCS). :class:`MapRegionCounter` takes those masks once per geometry and
sums the pixels on the backend for every new cube (e.g. each window of a stream).
"""

import numpy as np
from gammapy.maps import WcsGeom

from rtafast_kernels import resolve_backend

__all__ = ["MapRegionCounter", "counts_in_regions"]


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
        for k, region in enumerate([on_region, *off_regions]):
            mask = image.region_mask([region]).data
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
        data = getattr(counts, "data", counts)
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
