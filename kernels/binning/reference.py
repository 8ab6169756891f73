"""Binning: the NumPy reference of :func:`rtafast_kernels.binning.element.event_bin`.

Every backend returns a :class:`BinOutcome`: how many events were counted,
outside, invalid; the indices of the *ambiguous* events (within rounding of a bin
edge, for the caller to decide with gammapy's arithmetic); and, on request, the
bins of the counted events (for sliding windows).
"""

from typing import NamedTuple

import numpy as np

from . import element as el

__all__ = [
    "BinOutcome",
    "outcome_from_codes",
    "bin_codes_numpy",
    "bin_events_numpy",
    "bin_events",
    "scatter_add",
]


class BinOutcome(NamedTuple):
    """What a binning call did with its events."""

    n_counted: int
    n_outside: int
    n_invalid: int
    #: Host int64 indices (into the call's event arrays) of the ambiguous events.
    ambiguous: np.ndarray
    #: Backend int64 array of the counted events' bins (only with ``keep_codes``).
    codes: object = None


def outcome_from_codes(xp, codes, keep_codes, to_numpy):
    """:class:`BinOutcome` of per-event codes (a backend array).

    On a device: the four classes' counts come back in one small copy, the ambiguous
    events' positions only when there are some (one flag per event).
    """
    classes = xp.stack(
        [
            (codes >= 0).sum(),
            (codes == el.OUTSIDE).sum(),
            (codes == el.INVALID).sum(),
            (codes == el.AMBIGUOUS).sum(),
        ]
    )
    n_counted, n_outside, n_invalid, n_ambiguous = (int(n) for n in to_numpy(classes))
    ambiguous = np.zeros(0, dtype=np.int64)
    if n_ambiguous:
        ambiguous = np.flatnonzero(to_numpy(codes == el.AMBIGUOUS)).astype(np.int64)
    return BinOutcome(
        n_counted=n_counted,
        n_outside=n_outside,
        n_invalid=n_invalid,
        ambiguous=ambiguous,
        codes=codes[codes >= 0] if keep_codes else None,
    )


def _near_edge(pix, tolerance):
    shifted = pix + 0.5
    with np.errstate(invalid="ignore"):  # NaN/inf pixels are classified elsewhere
        frac = shifted - np.floor(shifted)
    return (frac < tolerance) | (frac > 1.0 - tolerance)


def _radians(deg, p):
    """:func:`~rtafast_kernels.binning.element.to_radians` of an array."""
    if p[el.P_RAD32] == 1.0:
        return (deg.astype(np.float32) * np.float32(np.pi / 180.0)).astype(np.float64)
    return deg * (np.pi / 180.0)


def bin_codes_numpy(lon, lat, energy, p, scaled_edges):
    """Vectorised reference of :func:`~rtafast_kernels.binning.element.event_bin`."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        lon_r, lat_r = _radians(lon, p), _radians(lat, p)
        v = np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)])
        n = p[el.P_ROT : el.P_ROT + 9].reshape(3, 3) @ v
        if p[el.P_PROJ] == el.PROJ_TAN:
            front = n[2] > 0
            x = np.where(front, np.rad2deg(n[1] / n[2]), np.nan)
            y = np.where(front, -np.rad2deg(n[0] / n[2]), np.nan)
        else:
            x = np.rad2deg(np.arctan2(n[1], n[0]))
            y = np.rad2deg(np.arctan2(n[2], np.hypot(n[0], n[1])))
        lin = p[el.P_LIN : el.P_LIN + 4]
        px = p[el.P_CRPIX] + lin[0] * x + lin[1] * y
        py = p[el.P_CRPIX + 1] + lin[2] * x + lin[3] * y

        value = np.log(np.maximum(energy, 2.2250738585072014e-308)) if p[el.P_LOG] else energy
        j = np.clip(np.searchsorted(scaled_edges, value, side="left"), 1, len(scaled_edges) - 1)
        x_lo = scaled_edges[j - 1]
        pe = 1.0 / (scaled_edges[j] - x_lo) * (value - x_lo) + (j - 1) - 0.5

        ix, iy, ie = (np.floor(q + 0.5) for q in (px, py, pe))
        inside = (
            (ix >= 0)
            & (iy >= 0)
            & (ie >= 0)
            & (ix < p[el.P_NX])
            & (iy < p[el.P_NY])
            & (ie < p[el.P_NE])
        )
        flat = np.where(inside, (ie * p[el.P_NY] + iy) * p[el.P_NX] + ix, 0).astype(np.int64)
    codes = np.where(inside, flat, el.OUTSIDE)
    ambiguous = (
        _near_edge(px, p[el.P_TOL]) | _near_edge(py, p[el.P_TOL]) | _near_edge(pe, p[el.P_ETOL])
    )
    codes = np.where(ambiguous & np.isfinite(px) & np.isfinite(py), el.AMBIGUOUS, codes)
    codes = np.where(np.isnan(px) | np.isnan(py), el.OUTSIDE, codes)
    valid = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(energy) & (energy > 0)
    return np.where(valid, codes, el.INVALID).astype(np.int64)


def bin_events_numpy(lon, lat, energy, p, scaled_edges, cube, keep_codes=False):
    """Add the counted events to ``cube`` (flat float64); return a :class:`BinOutcome`."""
    codes = bin_codes_numpy(lon, lat, energy, p, scaled_edges)
    counted = codes[codes >= 0]
    cube += np.bincount(counted, minlength=cube.size).astype(cube.dtype)
    return outcome_from_codes(np, codes, keep_codes, np.asarray)


def bin_events(backend, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
    """Operation ``bin_events`` (numpy): bin events into the flat ``cube`` in place.

    Returns a :class:`BinOutcome` (with the counted events' bins when ``keep_codes``).
    """
    return bin_events_numpy(lon, lat, energy, params, scaled_edges, cube, keep_codes)


def scatter_add(backend, cube, codes, weight):
    """Operation ``scatter_add`` (numpy): ``cube[codes] += weight``, repeated codes summed."""
    np.add.at(cube, codes, weight)
