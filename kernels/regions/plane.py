"""The float32 screen of on/off counting: one tangent plane for every circle.

The exact test (:func:`rtafast_kernels.regions.element.circle_code`) is float64 with
trigonometry, per event and circle. The screen decides almost every event with float32
arithmetic that LLVM vectorises (see :mod:`rtafast_kernels.regions.cpu`):

* per event, once: its gnomonic (TAN) coordinates ``(X, Y)`` (rad) in the plane
  tangent at a reference point ``(ra0, dec0)`` near the circles, from the small offsets
  ``a = RA - ra0``, ``b = Dec - dec0`` (short Taylor polynomials, no libm call):
  ``X = cos(Dec) sin(a) / D``, ``Y = (sin(b) (1 + sin^2(dec0) (cos a - 1))
  - sin(dec0) cos(dec0) cos(b) (cos a - 1)) / D``, ``D = cos(b) + cos(dec0) cos(Dec)
  (cos a - 1)``;
* per event and circle: ``q = (X - X_k)^2 + (Y - Y_k)^2`` against two radii:
  ``q < r_in^2``: inside, ``q > r_out^2``: outside, in between: the exact test.

Each circle of the kernel (a circle in *its own* tangent plane, with an ambiguity band)
is a near-circle (an ellipse) in the reference plane: :func:`screen_params` maps its
inner and outer ambiguity edges (180 points each) into the reference plane and takes
the nearest and farthest point from the image of the circle's centre, with margins for
the sampling (relative :data:`SAMPLING_MARGIN`) and float32's rounding (absolute
:data:`ROUNDING_MARGIN` rad, relative :data:`RELATIVE_ROUNDING` of the coordinates).
An event the screen calls inside (outside) is therefore inside (outside) for the exact
test too, never ambiguous; only the events in the thin band between the radii (and
invalid ones) take the exact float64 path.

Events outside the box ``|a| <= HA``, ``|b| <= HB`` (the circles' bounds, see
``element.bounds_offset``) are outside; the polynomials are valid there
(``|a|, |b| <=`` :data:`MAX_OFFSET_DEG`). Circles near a pole, or spread over more than
that, or more than :data:`MAX_CIRCLES` circles, get no screen (``S_ON = 0``: every
event takes the exact path).

Packed parameters (float64 array, :data:`HEADER_SIZE` + 4 per circle): ``S_*`` below,
then per circle ``X_k, Y_k, r_in^2, r_out^2`` (rad, rad^2; the squares rounded to
float32 inwards and outwards).
"""

import math

import numpy as np

from . import element as el

__all__ = [
    "HEADER_SIZE",
    "MAX_OFFSET_DEG",
    "ROUNDING_MARGIN",
    "SAMPLING_MARGIN",
    "basis",
    "plane_coordinates",
    "screen_params",
    "screen_params_bands",
]

S_ON = 0  # 1: screen the events; 0: every event takes the exact path
S_RA0 = 1  # reference RA (deg), a multiple of 2^-14 (ra0 -+ 360 exact in float32)
S_DEC0 = 2  # reference Dec (deg), a float32 value
S_SIN0 = 3  # sin(dec0)
S_COS0 = 4  # cos(dec0)
S_HA = 5  # box half width in a = RA - ra0 (rad)
S_HB = 6  # box half height in b = Dec - dec0 (rad)
HEADER_SIZE = 8
FIELDS = 4  # per circle: X, Y, r_in^2, r_out^2

#: Largest |a|, |b| (deg) of the box (the polynomials' domain is 0.25 rad = 14.3 deg).
MAX_OFFSET_DEG = 12.0
#: Most circles screened (the kernel's float32 sum of ``1 + (n + 1) k`` stays exact).
MAX_CIRCLES = 300
#: Largest |Dec| (deg) a box may reach.
MAX_DEC = 80.0
#: Relative margin on the radii for the sampling of the edges (180 points: the
#: distance between samples deviates by < (pi / 180)^2 / 2 = 1.5e-4 relative).
SAMPLING_MARGIN = 1e-3
#: Absolute margin on the radii (rad) for float32 rounding (~6e-8 rad = 0.01 arcsec).
ROUNDING_MARGIN = 1e-6
#: Relative margin on the radii for float32 rounding, of ``|X_k| + |Y_k| + r``.
RELATIVE_ROUNDING = 1e-5
_D2R = math.pi / 180.0
_N_EDGE = 180


def _unit(ra_deg, dec_deg):
    ra, dec = np.deg2rad(ra_deg), np.deg2rad(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _cross(a, b):
    """``np.cross`` of (..., 3) arrays, without its axis bookkeeping (a hot path)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def plane_coordinates(v, ra0, dec0):
    """Gnomonic coordinates (rad) at ``(ra0, dec0)`` (deg) of vectors ``v`` (..., 3).

    Ratios of components: ``v`` need not be unit vectors (any positive length).
    """
    p = _unit(ra0, dec0)
    east = np.array([-math.sin(ra0 * _D2R), math.cos(ra0 * _D2R), 0.0])
    north = _cross(p, east)
    d = v @ p
    return (v @ east) / d, (v @ north) / d


def basis(p):
    """Two unit vectors orthogonal to ``p`` (n, 3) and to each other."""
    helper = np.where(np.abs(p[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = _cross(p, helper)
    e1 /= np.sqrt((e1 * e1).sum(axis=1, keepdims=True))
    return e1, _cross(p, e1)


_PHI = np.linspace(0.0, 2 * np.pi, _N_EDGE, endpoint=False)
_COS, _SIN = np.cos(_PHI), np.sin(_PHI)


def _edge_distances(rows, radii, ra0, dec0, xk, yk):
    """Nearest and farthest distance (rad, reference plane) of circles' edges.

    ``radii`` (k, n): k edges per circle (e.g. the inner and outer ambiguity edges);
    returns two (k, n) arrays.
    """
    p, c = rows[:, el.C_P : el.C_P + 3], rows[:, el.C_C : el.C_C + 3]
    e1, e2 = basis(p)
    ring = e1[:, None, :] * _COS[None, :, None] + e2[:, None, :] * _SIN[None, :, None]
    w = c[None, :, None, :] + radii[:, :, None, None] * ring[None]  # (k, n, N_EDGE, 3)
    x, y = plane_coordinates(w, ra0, dec0)  # ratios: w need not be normalised
    dist = np.hypot(x - xk[None, :, None], y - yk[None, :, None])
    return dist.min(axis=-1), dist.max(axis=-1)


def screen_params(circles, bounds):
    """Packed float32 screen of the circles (see the module's docstring).

    Parameters
    ----------
    circles : ndarray, shape (CIRCLE_SIZE, n_circles)
        The kernel's circles (``element``), host array.
    bounds : ndarray, shape (BOUNDS_SIZE,)
        Their RA/Dec box (``element.B_*``).

    Returns
    -------
    ndarray of float64, shape (HEADER_SIZE + 4 n_circles,)
    """
    return screen_params_bands([circles], bounds)[0]


_GEOMETRY = [*range(el.C_P, el.C_P + 3), *range(el.C_C, el.C_C + 3), el.C_R2]


def screen_params_bands(circles_list, bounds):
    """:func:`screen_params` of several versions of the same circles at once.

    The versions (e.g. one per ambiguity band) share their geometry (tangent points,
    centres, radii) and differ in their band (``C_TOL``): the edges of every band are
    mapped in one pass. Versions with another geometry are screened one by one.

    Parameters
    ----------
    circles_list : list of ndarray, shape (CIRCLE_SIZE, n_circles)
    bounds : ndarray, shape (BOUNDS_SIZE,)

    Returns
    -------
    list of ndarray of float64, shape (HEADER_SIZE + 4 n_circles,)
    """
    rows_list = [np.asarray(c, dtype=np.float64).T for c in circles_list]
    rows = rows_list[0]
    if any(
        r.shape != rows.shape or not np.array_equal(r[:, _GEOMETRY], rows[:, _GEOMETRY])
        for r in rows_list[1:]
    ):
        return [screen_params_bands([c], bounds)[0] for c in circles_list]
    empty = np.zeros(HEADER_SIZE + FIELDS * rows.shape[0])  # S_ON = 0
    usable = [r.shape[0] <= MAX_CIRCLES and bool(np.all(np.isfinite(r))) for r in rows_list]
    if not any(usable):
        return [empty for _ in rows_list]
    # reference: the last circle's tangent point (the off regions' WCS: the pointing)
    p = rows[-1, el.C_P : el.C_P + 3]
    ra0 = round(math.degrees(math.atan2(p[1], p[0])) % 360.0 * 2.0**14) / 2.0**14 % 360.0
    dec0 = float(np.float32(math.degrees(math.asin(max(-1.0, min(1.0, p[2]))))))
    ra_mid, hw = float(bounds[el.B_RA]), float(bounds[el.B_HW])
    dec_lo, dec_hi = float(bounds[el.B_DEC_MIN]), float(bounds[el.B_DEC_MAX])
    corners = np.array([ra_mid - hw, ra_mid + hw]) - ra0
    half_width = float(np.max(np.abs((corners + 180.0) % 360.0 - 180.0))) + 1e-3
    half_height = max(abs(dec_hi - dec0), abs(dec0 - dec_lo)) + 1e-3
    polar = max(abs(dec_lo), abs(dec_hi), abs(dec0)) > MAX_DEC
    if polar or hw >= 90.0 or max(half_width, half_height) > MAX_OFFSET_DEG:
        return [empty for _ in rows_list]
    centre = rows[:, el.C_C : el.C_C + 3]
    xk, yk = plane_coordinates(centre / np.linalg.norm(centre, axis=1, keepdims=True), ra0, dec0)
    r2 = rows[:, el.C_R2]
    radii = []
    for r in rows_list:
        tol = r[:, el.C_TOL]
        radii += [np.sqrt(np.maximum(r2 - tol, 0.0)), np.sqrt(r2 + tol)]
    nearest, farthest = _edge_distances(rows, np.stack(radii), ra0, dec0, xk, yk)
    header = np.zeros(HEADER_SIZE)
    header[S_ON] = 1.0
    header[S_RA0], header[S_DEC0] = ra0, dec0
    header[S_SIN0], header[S_COS0] = math.sin(dec0 * _D2R), math.cos(dec0 * _D2R)
    header[S_HA], header[S_HB] = half_width * _D2R, half_height * _D2R
    out = []
    for k, ok in enumerate(usable):
        near, far = nearest[2 * k], farthest[2 * k + 1]
        out.append(_packed(header, xk, yk, near, far) if ok else empty)
    return out


def _packed(header, xk, yk, near, far):
    slack = ROUNDING_MARGIN + RELATIVE_ROUNDING * (np.abs(xk) + np.abs(yk) + far)
    r_in = np.maximum(near * (1 - SAMPLING_MARGIN) - slack, 0.0)
    r_out = far * (1 + SAMPLING_MARGIN) + slack
    r_in2 = np.nextafter(np.float32(r_in**2), np.float32(0)).astype(np.float64)
    r_in2 = np.where(r_in > 0, r_in2, -1.0)  # no inside when the circle is in the band
    r_out2 = np.nextafter(np.float32(r_out**2), np.float32(np.inf)).astype(np.float64)
    per_circle = np.stack([xk, yk, r_in2, r_out2], axis=1)
    return np.concatenate([header, per_circle.ravel()])
