"""Element math of on/off counting: which sky circles one event falls in, written once.

A *circle* is gammapy's ``CircleSkyRegion.contains(skycoord, wcs)``: the region drawn
in the pixel plane of a TAN (gnomonic) WCS with square pixels — a circle there, not on
the sky. With ``p`` the unit vector of the WCS's tangent point and ``v`` an event's,
the event's point of the tangent plane is ``v / (v . p)`` (3-vectors, radians), so the
test is ``|v / (v . p) - c'|^2 < R^2`` (computed without the division) with
``c' = c / (c . p)`` the circle centre's
point and ``R`` the pixel radius times the pixel size (rad). It is independent of the
basis of the plane (any rotation of the WCS), so every vector is in the events' frame
(ICRS). Events behind the tangent plane (``v . p <= 0``) are outside (WCS gives NaN).

Packed circles (float64 ``(CIRCLE_SIZE, n_circles)``: one row per field ``C_*``, so
that the screening loop over circles vectorises): ``p``,
``c'``, ``R^2``, the tolerance on ``|.|^2`` (events with ``|s - R^2| <= tol`` are
*ambiguous*: the caller decides them with gammapy's arithmetic), and a *screen*: with
``x = (RA - RA_k) cos(Dec_k)``, ``y = Dec - Dec_k`` (deg) about the circle's centre, an
event with ``x^2 + y^2`` below ``r_in^2`` is inside and above ``r_out^2`` outside (the
caller brackets the circle's footprint in these coordinates, margins included), so
that only events in the thin band between need the trigonometry of the exact test.
``bounds`` (``B_*``) is an RA/Dec box containing every circle (``RA`` offsets are taken
from its ``B_RA``).

Energy bins: gammapy's ``RegionNDMap.fill_events`` puts an event in bin ``k`` with
``edges[k] <= E < edges[k + 1]`` (``floor(pix + 0.5)``; outside the axis: nowhere);
energies within ``etol * edge`` of an edge are ambiguous.

Event status (:func:`event_status`): ``INVALID`` (NaN/inf coordinates or energy, counted
nowhere, as in gammapy), ``OUTSIDE`` (in no circle or no energy bin), ``AMBIGUOUS``, or
the energy bin (``>= 0``) of an event certainly inside at least one circle.
"""

import math

__all__ = [
    "AMBIGUOUS",
    "BOUNDS_SIZE",
    "CIRCLE_SIZE",
    "INVALID",
    "OUTSIDE",
    "bounds_offset",
    "circle_code",
    "energy_code",
    "event_status",
    "member_code",
    "screen_code",
    "screen_event",
    "unit_vector",
    "wrap_delta",
]

C_P = 0  # tangent point unit vector x, y, z
C_C = 3  # gnomonic point of the centre, c / (c . p)
C_R2 = 6  # squared radius in the tangent plane (rad^2)
C_TOL = 7  # ambiguity band on the squared distance (rad^2)
C_OFF = 8  # screening centre: RA offset from bounds[B_RA] (deg, in [-180, 180))
C_DEC = 9  # screening centre: Dec (deg)
C_COS = 10  # cos(Dec) of the screening centre
C_RIN2 = 11  # squared screening radius (deg^2) below which an event is inside
C_ROUT2 = 12  # squared screening radius (deg^2) above which an event is outside
C_ROUT = 13  # its square root (deg): the Dec test
CIRCLE_SIZE = 14

B_RA = 0
B_HW = 1
B_DEC_MIN = 2
B_DEC_MAX = 3
BOUNDS_SIZE = 4

OUTSIDE = -1
AMBIGUOUS = -2
INVALID = -3

_D2R = math.pi / 180.0


def wrap_delta(dra):
    """A longitude difference (deg) wrapped to [-180, 180)."""
    return dra - 360.0 * math.floor((dra + 180.0) / 360.0)


def unit_vector(ra_deg, dec_deg):
    """Unit vector of a sky position (deg)."""
    lon = ra_deg * _D2R
    lat = dec_deg * _D2R
    cos_lat = math.cos(lat)
    return cos_lat * math.cos(lon), cos_lat * math.sin(lon), math.sin(lat)


def screen_code(dra, dec, circles, k):
    """Circle ``k``'s screen: 0 outside, 1 inside, 3 in the band (``dra``: RA - B_RA)."""
    y = dec - circles[C_DEC, k]
    if not (abs(y) <= circles[C_ROUT, k]):
        return 0
    x = dra - circles[C_OFF, k]
    if x >= 180.0:
        x -= 360.0
    elif x < -180.0:
        x += 360.0
    x *= circles[C_COS, k]
    q = x * x + y * y
    if q > circles[C_ROUT2, k]:
        return 0
    if q < circles[C_RIN2, k]:
        return 1
    return 3


def circle_code(x, y, z, circles, k):
    """Exact test: 1 inside circle ``k``, 0 outside, 2 ambiguous (unit vector x, y, z)."""
    d = x * circles[C_P, k] + y * circles[C_P + 1, k] + z * circles[C_P + 2, k]
    if not (d > 0.0):
        return 0
    wx = x - d * circles[C_C, k]
    wy = y - d * circles[C_C + 1, k]
    wz = z - d * circles[C_C + 2, k]
    s = wx * wx + wy * wy + wz * wz  # |v / d - c'|^2 d^2
    d2 = d * d
    if abs(s - circles[C_R2, k] * d2) <= circles[C_TOL, k] * d2:
        return 2
    if s < circles[C_R2, k] * d2:
        return 1
    return 0


def member_code(ra, dec, dra, circles, k):
    """1 inside circle ``k``, 0 outside, 2 ambiguous: the screen, then the exact test."""
    code = screen_code(dra, dec, circles, k)
    if code == 3:
        x, y, z = unit_vector(ra, dec)
        code = circle_code(x, y, z, circles, k)
    return code


def energy_code(energy, edges, etol):
    """Energy bin of an energy (``edges[k] <= E < edges[k+1]``), OUTSIDE or AMBIGUOUS."""
    n = edges.shape[0] - 1
    if energy < edges[0]:
        if edges[0] - energy <= etol * abs(edges[0]):
            return AMBIGUOUS
        return OUTSIDE
    if energy >= edges[n]:
        if energy - edges[n] <= etol * abs(edges[n]):
            return AMBIGUOUS
        return OUTSIDE
    lo = 0
    hi = n
    while hi - lo > 1:  # edges[lo] <= energy < edges[hi]
        mid = (lo + hi) // 2
        if energy >= edges[mid]:
            lo = mid
        else:
            hi = mid
    if energy - edges[lo] <= etol * abs(edges[lo]) or edges[hi] - energy <= etol * abs(edges[hi]):
        return AMBIGUOUS
    return lo


def bounds_offset(ra, dec, bounds):
    """RA - B_RA wrapped to [-180, 180) if (ra, dec) is in the bounds box, else NaN."""
    if not (bounds[B_DEC_MIN] <= dec <= bounds[B_DEC_MAX]):
        return math.nan
    dra = wrap_delta(ra - bounds[B_RA])
    if not (abs(dra) <= bounds[B_HW]):
        return math.nan
    return dra


def screen_event(dra, dec, circles):
    """All circles' screens at once, without branches (the loop vectorises).

    Returns
    -------
    n_inside : int
        Circles whose screen says inside.
    first : int
        The first of them (``n_circles`` if none).
    n_band : int
        Circles whose screen band the event is in (exact test needed).
    """
    n = circles.shape[1]
    n_inside = 0
    n_band = 0
    first = n
    for k in range(n):
        y = dec - circles[C_DEC, k]
        x = dra - circles[C_OFF, k]
        x = x - 360.0 * (x >= 180.0) + 360.0 * (x < -180.0)
        x = x * circles[C_COS, k]
        q = x * x + y * y
        inside = q < circles[C_RIN2, k]
        n_inside += inside
        n_band += (q <= circles[C_ROUT2, k]) & (not inside)
        first = min(first, k if inside else n)
    return n_inside, first, n_band


def event_status(ra, dec, energy, circles, bounds, edges, etol):
    """Status of one event: its energy bin (inside a circle), OUTSIDE, AMBIGUOUS or INVALID.

    The energy is looked at only for events inside (or ambiguous for) some circle.
    """
    if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(energy)):
        return INVALID
    dra = bounds_offset(ra, dec, bounds)
    if math.isnan(dra):
        return OUTSIDE
    n_inside, first, n_band = screen_event(dra, dec, circles)
    inside = n_inside > 0
    ambiguous = False
    if n_band > 0:
        for k in range(circles.shape[1]):
            code = member_code(ra, dec, dra, circles, k)
            if code == 2:
                ambiguous = True
            elif code == 1:
                inside = True
    if not (inside or ambiguous):
        return OUTSIDE
    ebin = energy_code(energy, edges, etol)
    if ebin == OUTSIDE:
        return OUTSIDE
    if ambiguous:
        return AMBIGUOUS
    return ebin
