"""Element math of event binning, written once in plain Python.

An event's sky position (a unit vector) is rotated into the map's *native*
spherical frame with one 3x3 matrix (event frame -> map frame -> WCS native
frame, computed once per geometry on the host), projected (TAN or CAR, following
WCSLIB's conventions), and mapped to pixel coordinates by the inverse of the WCS
linear transformation. The energy is mapped to a fractional bin by the same
piecewise-linear interpolation in the axis' scale (log or linear) that gammapy's
``MapAxis.coord_to_pix`` uses. Pixel ``p`` belongs to bin ``floor(p + 0.5)``.

The geometry is packed in one float64 array (see :data:`PARAM_SIZE` and the
``P_*`` offsets) so the same functions run compiled with ``numba.njit`` and as
CUDA device functions.
"""

import math

import numpy as np

__all__ = [
    "PROJ_TAN",
    "PROJ_CAR",
    "PARAM_SIZE",
    "OUTSIDE",
    "INVALID",
    "AMBIGUOUS",
    "to_radians",
    "sky_to_pixel",
    "energy_to_pixel",
    "event_bin",
]

PROJ_TAN = 0.0
PROJ_CAR = 1.0

# offsets in the packed geometry array
P_ROT = 0  # 9 values, row-major rotation: native = R @ event unit vector
P_LIN = 9  # 4 values, inverse of the WCS linear matrix (CDELT * PC), row-major
P_CRPIX = 13  # 2 values, 0-based reference pixel (x, y)
P_PROJ = 15
P_NX = 16
P_NY = 17
P_NE = 18  # number of energy bins
P_LOG = 19  # 1.0: log-scale energy axis, 0.0: linear
P_TOL = 20  # half-width (in pixels) of the band around a spatial bin edge flagged ambiguous
P_ETOL = 21  # the same for energy bins (larger for float32 energies: gammapy logs in float32)
P_RAD32 = 22  # 1.0: radians rounded to float32 first (astropy, float32 columns, frame change)
PARAM_SIZE = 23

#: Bin codes for events that are not counted.
OUTSIDE = -1
INVALID = -2
AMBIGUOUS = -3

_R2D = 180.0 / math.pi
_D2R = math.pi / 180.0
_D2R32 = np.float32(_D2R)
_TINY = 2.2250738585072014e-308


def to_radians(deg, p):
    """``deg`` in radians, float64; rounded to float32 first when ``p[P_RAD32]`` is set.

    astropy converts a float32 column's degrees to radians in float32 (one float32
    product with ``float32(pi / 180)``) before its frame transformation's float64
    arithmetic, so a float32 column binned in another frame lands where that rounding
    puts it.
    """
    if p[P_RAD32] == 1.0:
        return np.float64(np.float32(deg) * _D2R32)
    return deg * _D2R


def sky_to_pixel(lon_deg, lat_deg, p):
    """Pixel coordinates (0-based, float) of a sky position, NaN where undefined.

    Parameters
    ----------
    lon_deg, lat_deg : float
        Event longitude and latitude in the event frame, deg.
    p : array of float64
        Packed geometry.
    """
    lon = to_radians(lon_deg, p)
    lat = to_radians(lat_deg, p)
    cos_lat = math.cos(lat)
    vx = cos_lat * math.cos(lon)
    vy = cos_lat * math.sin(lon)
    vz = math.sin(lat)
    nx = p[P_ROT + 0] * vx + p[P_ROT + 1] * vy + p[P_ROT + 2] * vz
    ny = p[P_ROT + 3] * vx + p[P_ROT + 4] * vy + p[P_ROT + 5] * vz
    nz = p[P_ROT + 6] * vx + p[P_ROT + 7] * vy + p[P_ROT + 8] * vz
    if p[P_PROJ] == PROJ_TAN:
        if nz <= 0.0:  # far hemisphere: the gnomonic projection is undefined
            return math.nan, math.nan
        x = _R2D * ny / nz
        y = -_R2D * nx / nz
    else:  # CAR: native longitude and latitude themselves
        x = _R2D * math.atan2(ny, nx)
        y = _R2D * math.atan2(nz, math.sqrt(nx * nx + ny * ny))
    px = p[P_CRPIX] + p[P_LIN + 0] * x + p[P_LIN + 1] * y
    py = p[P_CRPIX + 1] + p[P_LIN + 2] * x + p[P_LIN + 3] * y
    return px, py


def energy_to_pixel(energy, p, scaled_edges):
    """Fractional energy bin as gammapy computes it (``MapAxis.coord_to_pix``).

    Linear interpolation of the bin number in the axis scale between the two
    edges around ``energy`` (extrapolated beyond the ends), minus 0.5.
    """
    if p[P_LOG] == 1.0:
        value = math.log(max(energy, _TINY))
    else:
        value = energy
    n_edges = scaled_edges.shape[0]
    # searchsorted(side="left") clipped to [1, n_edges - 1]
    lo, hi = 0, n_edges
    while lo < hi:
        mid = (lo + hi) // 2
        if scaled_edges[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    j = min(max(lo, 1), n_edges - 1)
    x_lo = scaled_edges[j - 1]
    slope = 1.0 / (scaled_edges[j] - x_lo)
    return slope * (value - x_lo) + (j - 1) - 0.5


def _near_edge(pix, tolerance):
    shifted = pix + 0.5
    frac = shifted - math.floor(shifted)
    return frac < tolerance or frac > 1.0 - tolerance


def event_bin(lon_deg, lat_deg, energy, p, scaled_edges):
    """Flat bin index ``(ie * ny + iy) * nx + ix`` of one event, or a negative code.

    Returns
    -------
    int
        The bin, or :data:`OUTSIDE` (outside the map), :data:`INVALID` (NaN/inf
        coordinate, energy <= 0 or NaN), :data:`AMBIGUOUS` (within the tolerance of
        a bin edge: the caller decides it with gammapy's own arithmetic).
    """
    if not (math.isfinite(lon_deg) and math.isfinite(lat_deg) and math.isfinite(energy)):
        return INVALID
    if energy <= 0.0:
        return INVALID
    px, py = sky_to_pixel(lon_deg, lat_deg, p)
    if math.isnan(px) or math.isnan(py):
        return OUTSIDE
    pe = energy_to_pixel(energy, p, scaled_edges)
    tolerance = p[P_TOL]
    if _near_edge(px, tolerance) or _near_edge(py, tolerance) or _near_edge(pe, p[P_ETOL]):
        return AMBIGUOUS
    ix = math.floor(px + 0.5)
    iy = math.floor(py + 0.5)
    ie = math.floor(pe + 0.5)
    if ix < 0 or iy < 0 or ie < 0 or ix >= p[P_NX] or iy >= p[P_NY] or ie >= p[P_NE]:
        return OUTSIDE
    return int((ie * p[P_NY] + iy) * p[P_NX] + ix)
