"""Packed parameters of the float32 screening path (``rtafast_kernels.binning.fast_element``).

Derived once per geometry (and cached) from the exact path's packed geometry
(``rtafast_kernels.binning.element``) and scaled energy edges: the reference point
and rotation of the small-offset expansions, and the edge bands that hold float32's
rounding (around the exact tolerances' own bands).
"""

import functools

import numpy as np

from . import element as el
from . import fast_element as fe

__all__ = ["fast_params"]


_BITS = {  # integer view of the energy column: (dtype, mantissa bits, exponent bias)
    np.dtype(np.float32): (np.int32, 23, 127),
    np.dtype(np.float64): (np.int64, 52, 1023),
}


def fast_params(p, scaled_edges, energy_dtype):
    """Packed parameters (float32 tuple) of the float32 screening path (cached).

    See :func:`_fast_params`.
    """
    p = np.ascontiguousarray(p, dtype=np.float64)
    edges = np.ascontiguousarray(scaled_edges, dtype=np.float64)
    return _cached_fast_params(p.tobytes(), edges.tobytes(), np.dtype(energy_dtype).str)


@functools.lru_cache(maxsize=64)
def _cached_fast_params(p_bytes, edges_bytes, energy_dtype):
    p = np.frombuffer(p_bytes, dtype=np.float64)
    return _fast_params(p, np.frombuffer(edges_bytes, dtype=np.float64), energy_dtype)


def _fast_params(p, scaled_edges, energy_dtype):
    """Packed parameters (float32 tuple) of the float32 screening path.

    Derived from the exact path's packed geometry ``p`` and scaled energy edges;
    see :mod:`rtafast_kernels.binning.fast_element`. The edge bands hold float32's
    rounding with a margin of ~10 over the largest errors measured near the map
    (tests/test_binning_fast.py checks a factor 4): ulps of the largest pixel
    coordinate, and ~1e-8 rad of direction error converted to pixels. They lie on
    both sides of the exact tolerance: ``F_TOL = P_TOL + error`` (the exact math
    decides within it) and ``F_TOL_SURE = P_TOL - error`` (within it an event is
    ambiguous for sure, where the exact tolerance is wider than the error). With
    ``P_RAD32`` the band also holds astropy's float32 radians, which the exact math
    reproduces and the screening does not. Axes whose edges are not uniform in their
    scale, and cubes of 2^31 bins or more (the loop's bins are
    int32), send every event to the exact math.
    """
    rotation = p[el.P_ROT : el.P_ROT + 9].reshape(3, 3)
    tan = p[el.P_PROJ] == el.PROJ_TAN
    centre = np.array([0.0, 0.0, 1.0]) if tan else np.array([1.0, 0.0, 0.0])
    reference = rotation.T @ centre  # the projection centre in the event frame
    # lon0 a multiple of 2^-14 deg: lon0 -+ 360 are exact float32 values too
    lon0 = np.round(np.rad2deg(np.arctan2(reference[1], reference[0])) % 360.0 * 2.0**14)
    lon0 = float(lon0 * 2.0**-14 % 360.0)
    lat0 = float(np.float32(np.rad2deg(np.arcsin(np.clip(reference[2], -1.0, 1.0)))))
    lon0_r, lat0_r = np.deg2rad(lon0), np.deg2rad(lat0)
    c, s = np.cos(lon0_r), np.sin(lon0_r)
    rotation_lon0 = rotation @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    reference_rotated = np.array([np.cos(lat0_r), 0.0, np.sin(lat0_r)])

    q = np.zeros(fe.FAST_SIZE)
    q[fe.F_LON0], q[fe.F_LAT0] = lon0, lat0
    q[fe.F_LON0_LO], q[fe.F_LON0_HI] = lon0 - 360.0, lon0 + 360.0
    q[fe.F_SIN_LAT0], q[fe.F_COS_LAT0] = np.sin(lat0_r), np.cos(lat0_r)
    q[fe.F_ROT : fe.F_ROT + 9] = rotation_lon0.ravel()
    q[fe.F_CENTRE : fe.F_CENTRE + 3] = rotation_lon0 @ reference_rotated - centre
    q[fe.F_CRPIX : fe.F_CRPIX + 2] = p[el.P_CRPIX : el.P_CRPIX + 2]
    q[fe.F_LIN : fe.F_LIN + 4] = p[el.P_LIN : el.P_LIN + 4]
    q[fe.F_NX], q[fe.F_NY], q[fe.F_NE] = p[el.P_NX], p[el.P_NY], p[el.P_NE]
    pixel_to_deg = np.abs(np.linalg.inv(p[el.P_LIN : el.P_LIN + 4].reshape(2, 2)))
    pixel_rad = np.deg2rad(np.min(np.hypot(pixel_to_deg[0], pixel_to_deg[1])))
    largest = max(p[el.P_NX], p[el.P_NY]) + np.abs(p[el.P_CRPIX : el.P_CRPIX + 2]).max()
    # float32's error allowances; the exact math decides within them of the exact
    # tolerances' bands (P_TOL, P_ETOL), and events further inside are ambiguous
    direction_error = 4e-8
    if p[el.P_RAD32] == 1.0:
        # the exact math rounds the radians to float32 as astropy does, the screening
        # does not: float32(pi / 180)'s relative error (2^-24) times |lon| <= 2 pi plus
        # the product's rounding (half an ulp, <= 2^-22) is <= 6.1e-7 rad; 1.5e-7 for
        # the latitude
        direction_error += 1e-6
    error = 5e-4 + 4e-7 * largest + direction_error / pixel_rad
    energy_error = 2e-5 + 1e-7 * p[el.P_NE]
    q[fe.F_TOL] = p[el.P_TOL] + error
    q[fe.F_ETOL] = p[el.P_ETOL] + energy_error
    q[fe.F_TOL_SURE] = p[el.P_TOL] - error if p[el.P_TOL] > error else -1.0
    q[fe.F_ETOL_SURE] = p[el.P_ETOL] - energy_error if p[el.P_ETOL] > energy_error else -1.0
    q[fe.F_PROJ], q[fe.F_LOG] = p[el.P_PROJ], p[el.P_LOG]
    widths = np.diff(scaled_edges)
    q[fe.F_E0] = scaled_edges[0]
    q[fe.F_EINV] = 1.0 / widths.mean()
    _, shift, bias = _BITS[np.dtype(energy_dtype)]
    q[fe.F_BITS_SHIFT], q[fe.F_BITS_BIAS], q[fe.F_BITS_SCALE] = shift, bias, 2.0**-shift
    q[fe.F_EMIN] = 1e-30  # zero and denormals: the exact math decides
    uniform = np.all(np.abs(widths - widths.mean()) <= 1e-9 * np.abs(widths.mean()))
    n_bins = p[el.P_NX] * p[el.P_NY] * p[el.P_NE]
    if not uniform or n_bins >= 2**31:  # int32 bins of the screening loop
        q[fe.F_EMIN] = np.inf
    # CAR events beyond the series' domain are outside the map if the map lies within it
    corners = np.array([[-0.5, -0.5], [p[el.P_NX] - 0.5, p[el.P_NY] - 0.5]]) - p[el.P_CRPIX]
    extent = (np.abs(corners) @ pixel_to_deg.T).max(axis=0) + 1.0  # deg, plus a margin
    within = np.all(extent < np.rad2deg(np.arctan(fe.SERIES_MAX)))
    q[fe.F_FAR_CODE] = el.OUTSIDE if within else fe.RECHECK
    q[fe.F_SIDES : fe.F_SIDES + 12] = _sides(p, lon0, lat0).ravel()
    ends = np.exp(scaled_edges[[0, -1]]) if p[el.P_LOG] == 1.0 else scaled_edges[[0, -1]]
    q[fe.F_ELO], q[fe.F_EHI] = ends[0] - 1e-3 * abs(ends[0]), ends[1] + 1e-3 * abs(ends[1])
    return tuple(np.float32(value) for value in q)


#: Points per side of the map sampled for the half-planes of :func:`_sides`.
_SIDE_SAMPLES = 256
#: Margin of the half-planes beyond the sampled boundary, deg (float32 offsets, the
#: boundary's curvature between samples).
_SIDE_MARGIN = 0.01


def _boundary_offsets(p, lon0, lat0):
    """Offsets ``(a, b)`` (deg) from ``(lon0, lat0)`` of points on the boundary of the
    map grown by one pixel, side by side: shape ``(4, _SIDE_SAMPLES, 2)``."""
    nx, ny = p[el.P_NX], p[el.P_NY]
    t = np.linspace(0.0, 1.0, _SIDE_SAMPLES)
    x0, x1, y0, y1 = -1.5, nx + 0.5, -1.5, ny + 0.5
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    pixels = np.array(
        [np.outer(1 - t, corners[k]) + np.outer(t, corners[(k + 1) % 4]) for k in range(4)]
    )
    lin = np.linalg.inv(p[el.P_LIN : el.P_LIN + 4].reshape(2, 2))
    x, y = np.deg2rad(np.einsum("ij,skj->isk", lin, pixels - p[el.P_CRPIX : el.P_CRPIX + 2]))
    if p[el.P_PROJ] == el.PROJ_TAN:  # native vector, as element.sky_to_pixel inverts
        native = np.stack([-y, x, np.ones_like(x)])
        native /= np.linalg.norm(native, axis=0)
    else:
        native = np.stack([np.cos(y) * np.cos(x), np.cos(y) * np.sin(x), np.sin(y)])
    rotation = p[el.P_ROT : el.P_ROT + 9].reshape(3, 3)
    v = np.einsum("ji,jsk->isk", rotation, native)  # event frame: R^T n
    lon = np.rad2deg(np.arctan2(v[1], v[0]))
    lat = np.rad2deg(np.arcsin(np.clip(v[2], -1.0, 1.0)))
    a = (lon - lon0 + 180.0) % 360.0 - 180.0
    return np.stack([a, lat - lat0], axis=-1)


def _sides(p, lon0, lat0):
    """Four half-planes ``(na, nb, c)``, ``na * a + nb * b <= c``, holding the map's
    image in the offsets ``(a, b)`` (deg) from the reference; ``c = inf`` (no bound)
    for maps near a pole, across longitude +-180 deg of the reference or larger than
    the projection allows.

    Each side's line through its corners is pushed out until every sampled boundary
    point of the map grown by a pixel lies inside, plus :data:`_SIDE_MARGIN`: the
    region the boundary encloses lies in the intersection (a convex set holding the
    boundary). Sound as long as the map is small against the sphere, which the
    refusals above ensure.
    """
    unbounded = np.array([[1.0, 0.0, np.inf]] * 4)
    radius = _map_radius(p)
    if radius > 60.0 or abs(lat0) + radius > 80.0:
        return unbounded
    points = _boundary_offsets(p, lon0, lat0)
    if not np.all(np.isfinite(points)) or np.abs(points[..., 0]).max() > 150.0:
        return unbounded
    centre = points.reshape(-1, 2).mean(axis=0)
    sides = []
    for k in range(4):
        start, stop = points[k, 0], points[k, -1]
        normal = np.array([stop[1] - start[1], start[0] - stop[0]])
        normal /= np.linalg.norm(normal)
        if normal @ (start - centre) < 0:
            normal = -normal
        sides.append([*normal, (points.reshape(-1, 2) @ normal).max() + _SIDE_MARGIN])
    return np.array(sides)


def _map_radius(p):
    """Largest angular distance (deg) from the projection centre to the map's corners.

    From the pixel corners (half a pixel beyond the outer centres) through the inverse
    linear transformation and the projection (TAN: ``atan(r)``; CAR: ``cos d = cos x
    cos y``); over the map's rectangle both grow outwards, so the corners bound it.
    """
    lin = p[el.P_LIN : el.P_LIN + 4].reshape(2, 2)
    nx, ny = p[el.P_NX], p[el.P_NY]
    corners = np.array([[-0.5, -0.5], [nx - 0.5, -0.5], [-0.5, ny - 0.5], [nx - 0.5, ny - 0.5]])
    x, y = np.linalg.inv(lin) @ (corners - p[el.P_CRPIX : el.P_CRPIX + 2]).T  # deg
    if p[el.P_PROJ] == el.PROJ_TAN:
        return float(np.rad2deg(np.arctan(np.deg2rad(np.hypot(x, y)))).max())
    if np.abs(x).max() >= 180.0 or np.abs(y).max() >= 90.0:
        return 180.0
    return float(np.rad2deg(np.arccos(np.cos(np.deg2rad(x)) * np.cos(np.deg2rad(y)))).max())
