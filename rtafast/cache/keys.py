"""Content keys for caches: hashes of array data and value keys of geometries."""

import hashlib

import numpy as np

__all__ = ["content_digest", "geom_key"]


def content_digest(*arrays):
    """Hex digest of the dtype, shape and bytes of each array."""
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def geom_key(geom):
    """Value key of a map geometry (WCS header, shape and axis edges)."""
    axes = tuple(
        (axis.name, tuple(np.asarray(axis.edges.value).tolist()), str(axis.unit))
        for axis in geom.axes
    )
    wcs = geom.wcs.to_header_string() if hasattr(geom, "wcs") else repr(geom)
    return (wcs, geom.data_shape, axes)
