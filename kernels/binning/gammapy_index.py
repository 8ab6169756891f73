"""gammapy's pixel-to-bin rule, compiled: ``floor(pix + 0.5)``, -1 outside, raveled.

``WcsGeom.pix_to_idx`` of gammapy (``pix_tuple_to_idx``, then -1 where an index is
outside its axis) for the few events whose pixel coordinates come from gammapy's own
arithmetic (:mod:`rtafast.events.gammapy_bins`): the same float64 operations, one call
instead of a dozen NumPy calls on a handful of values.
"""

import numpy as np

from ..jit import cpu_kernel

__all__ = ["flat_bins"]


def _flat_bins_source(px, py, pe, nx, ny, ne, out):
    for i in range(out.shape[0]):
        ix = np.floor(px[i] + 0.5)
        iy = np.floor(py[i] + 0.5)
        ie = np.floor(pe[i] + 0.5)
        inside = np.isfinite(px[i]) and np.isfinite(py[i]) and np.isfinite(pe[i])
        inside = inside and 0 <= ix < nx and 0 <= iy < ny and 0 <= ie < ne
        out[i] = (int(ie) * ny + int(iy)) * nx + int(ix) if inside else -1


_flat_bins = cpu_kernel(_flat_bins_source)


def flat_bins(px, py, pe, nx, ny, ne):
    """Flat bins ``(ie * ny + iy) * nx + ix`` of float64 pixel coordinates, -1 outside.

    Parameters
    ----------
    px, py, pe : ndarray of float64
        Pixel coordinates (x, y, energy), gammapy's (bin ``i`` spans ``[i - 0.5, i + 0.5)``).
    nx, ny, ne : int
        The axes' sizes.
    """
    out = np.empty(len(px), dtype=np.int64)
    _flat_bins(
        np.ascontiguousarray(px, dtype=np.float64),
        np.ascontiguousarray(py, dtype=np.float64),
        np.ascontiguousarray(pe, dtype=np.float64),
        nx,
        ny,
        ne,
        out,
    )
    return out
