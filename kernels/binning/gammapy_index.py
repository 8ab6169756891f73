"""gammapy's energy pixel and pixel-to-bin rule, compiled, for a few events.

For the events whose bins come from gammapy's own arithmetic
(:mod:`rtafast.events.gammapy_bins`), the same float64 operations in one call instead
of a dozen NumPy and SciPy calls on a handful of values:

* :func:`linear_spline_pixels`: the energy axis' pixel coordinate. gammapy interpolates
  the scaled energy with ``scipy.interpolate.interp1d(kind=1, fill_value="extrapolate")``,
  a degree-1 B-spline (``make_interp_spline``: knots ``[x0, x0, ..., xn, xn]``, the
  edges' pixels as coefficients) that SciPy evaluates with its ``_find_interval`` and
  ``_deBoor_D``; the same steps here, then the axis' pixel offset added;
* :func:`flat_bins`: ``WcsGeom.pix_to_idx`` (``pix_tuple_to_idx``, then -1 where an
  index is outside its axis), raveled.
"""

import numpy as np

from ..jit import cpu_kernel

__all__ = ["flat_bins", "linear_spline", "linear_spline_pixels"]


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


def _linear_spline_pixels_source(x, knots, coefs, offset, out):
    n = knots.shape[0] - 2
    for i in range(x.shape[0]):
        xval = x[i]
        if xval != xval:
            out[i] = np.nan
            continue
        # _find_interval for k = 1, extrapolating: the last interval in [1, n - 1] whose
        # knot is <= x (1 where there is none)
        interval = 1
        while xval >= knots[interval + 1] and interval + 1 != n:
            interval += 1
        # _deBoor_D for k = 1: h = [0, 1] -> w = 1 / (xb - xa), h0 += w (xb - x), h1 = w (x - xa)
        xb = knots[interval + 1]
        xa = knots[interval]
        h0 = 0.0
        h1 = 0.0
        if xb != xa:
            w = 1.0 / (xb - xa)
            h0 += w * (xb - xval)
            h1 = w * (xval - xa)
        value = 0.0  # SciPy sums the terms onto 0.0, in this order
        value = value + coefs[interval - 1] * h0
        value = value + coefs[interval] * h1
        out[i] = value + offset


_linear_spline_pixels = cpu_kernel(_linear_spline_pixels_source)


def linear_spline(x, y):
    """Knots and coefficients of ``make_interp_spline(x, y, k=1)`` (what SciPy's
    ``interp1d(x, y, kind=1)`` evaluates): ``[x0, x0, x1, ..., xn, xn]`` and ``y``, float64."""
    x = np.asarray(x, dtype=np.float64)
    return np.r_[x[0], x, x[-1]], np.asarray(y, dtype=np.float64)


def linear_spline_pixels(x, knots, coefs, offset):
    """Pixel coordinates gammapy's energy axis gives scaled energies ``x`` (float64).

    Parameters
    ----------
    x : ndarray
        Energies in the axis' interpolation scale (e.g. their log), any float dtype.
    knots, coefs : ndarray of float64
        :func:`linear_spline` of the scaled edges and their pixel coordinates
        (``0, 1, ..., n``).
    offset : float
        The axis' pixel offset (-0.5 for an axis of edges).
    """
    out = np.empty(len(x), dtype=np.float64)
    _linear_spline_pixels(np.ascontiguousarray(x, dtype=np.float64), knots, coefs, offset, out)
    return out
