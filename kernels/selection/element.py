"""Element math of event selection (time intervals, energy range, cone), written once.

Packed parameters (float64 array, offsets ``S_*``): energy range ``[emin, emax)``
(in the events' energy unit), cone centre as a unit vector and ``cos(radius)``
(``use_cone`` 0/1), and a tolerance for time bounds. Time intervals are a flat
array ``[t0, t1, t0, t1, ...]`` of half-open ``[t0, t1)`` intervals in the events'
time column unit (seconds since the reference time); an empty array selects all
times.

Returns 1 (selected), 0 (rejected) or 2 (ambiguous: within rounding of a time
bound or of the cone's edge, where the caller decides with gammapy's own
arithmetic, astropy ``Time`` comparisons and ``SkyCoord.separation``).
"""

import math

__all__ = ["SELECTION_SIZE", "event_selected"]

S_EMIN = 0
S_EMAX = 1
S_CONE = 2  # unit vector x, y, z
S_COS_RADIUS = 5
S_USE_CONE = 6
S_TIME_TOL = 7  # s
S_CONE_TOL = 8  # in cos(separation)
SELECTION_SIZE = 9

_D2R = math.pi / 180.0


def event_selected(time, energy, ra_deg, dec_deg, p, intervals):
    """1 if the event passes every cut, 0 if not, 2 if a bound is within rounding."""
    if not (p[S_EMIN] <= energy < p[S_EMAX]):
        return 0
    ambiguous = False
    n_intervals = intervals.shape[0] // 2
    if n_intervals > 0:
        inside = False
        tol = p[S_TIME_TOL]
        for k in range(n_intervals):
            start = intervals[2 * k]
            stop = intervals[2 * k + 1]
            if start <= time < stop:
                inside = True
            if abs(time - start) <= tol or abs(time - stop) <= tol:
                ambiguous = True
        if not inside and not ambiguous:
            return 0
    if p[S_USE_CONE] == 1.0:
        lon = ra_deg * _D2R
        lat = dec_deg * _D2R
        cos_lat = math.cos(lat)
        dot = (
            p[S_CONE] * cos_lat * math.cos(lon)
            + p[S_CONE + 1] * cos_lat * math.sin(lon)
            + p[S_CONE + 2] * math.sin(lat)
        )
        if abs(dot - p[S_COS_RADIUS]) <= p[S_CONE_TOL]:
            ambiguous = True
        elif dot < p[S_COS_RADIUS]:
            return 0
    if ambiguous:
        return 2
    return 1
