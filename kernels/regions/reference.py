"""On/off counting, NumPy reference of :mod:`rtafast_kernels.regions.element`."""

import numpy as np

from . import element as el

__all__ = ["count_in_circles", "count_numpy", "event_status_numpy"]


def _energy_codes(energy, edges, etol):
    n = edges.shape[0] - 1
    with np.errstate(invalid="ignore"):
        ebin = np.searchsorted(edges, energy, side="right") - 1
        ebin = np.where((ebin < 0) | (ebin >= n), el.OUTSIDE, ebin)
        above = np.clip(np.searchsorted(edges, energy), 0, n)
        below = np.clip(above - 1, 0, n)
        near = np.zeros(energy.shape, dtype=bool)
        for j in (below, above):
            near |= np.abs(energy - edges[j]) <= etol * np.abs(edges[j])
    return np.where(near, el.AMBIGUOUS, ebin)


def _unit_vectors(ra, dec):
    lon, lat = np.deg2rad(ra), np.deg2rad(dec)
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _exact_codes(ra, dec, row):
    """:func:`~rtafast_kernels.regions.element.circle_code` of circle ``row``."""
    v = _unit_vectors(ra, dec)
    d = row[el.C_P : el.C_P + 3] @ v
    w = v - d * row[el.C_C : el.C_C + 3, None]
    s = (w * w).sum(axis=0)
    d2 = d * d
    code = np.where(s < row[el.C_R2] * d2, 1, 0)
    code = np.where(np.abs(s - row[el.C_R2] * d2) <= row[el.C_TOL] * d2, 2, code)
    return np.where(d > 0, code, 0)


def _circle_codes(ra, dec, dra, circles):
    """(n_circles, n_events) codes 0/1/2: the screen, then the exact test in its band."""
    codes = np.zeros((circles.shape[1], ra.shape[0]), dtype=np.int8)
    with np.errstate(invalid="ignore"):
        for k, row in enumerate(circles.T):
            y = dec - row[el.C_DEC]
            x = dra - row[el.C_OFF]
            x = np.where(x >= 180.0, x - 360.0, np.where(x < -180.0, x + 360.0, x))
            x = x * row[el.C_COS]
            q = x * x + y * y
            near = (np.abs(y) <= row[el.C_ROUT]) & (q <= row[el.C_ROUT2])
            code = np.where(near & (q < row[el.C_RIN2]), 1, 0)
            band = np.flatnonzero(near & ~(q < row[el.C_RIN2]))
            code[band] = _exact_codes(ra[band], dec[band], row)
            codes[k] = code
    return codes


def event_status_numpy(ra, dec, energy, circles, bounds, edges, etol):
    """Vectorised :func:`~rtafast_kernels.regions.element.event_status`; also the codes.

    Returns
    -------
    status : ndarray of int64
    codes : ndarray of int8, shape (n_circles, n_events)
    """
    ra, dec, energy = (np.asarray(c, dtype=np.float64) for c in (ra, dec, energy))
    valid = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(energy)
    ebin = _energy_codes(energy, edges, etol)
    with np.errstate(invalid="ignore"):
        dra = ra - bounds[el.B_RA]
        dra = dra - 360.0 * np.floor((dra + 180.0) / 360.0)
        near = (bounds[el.B_DEC_MIN] <= dec) & (dec <= bounds[el.B_DEC_MAX])
        near &= np.abs(dra) <= bounds[el.B_HW]
    near &= valid
    codes = np.zeros((circles.shape[1], ra.shape[0]), dtype=np.int8)
    codes[:, near] = _circle_codes(ra[near], dec[near], dra[near], circles)
    codes[:, ebin == el.OUTSIDE] = 0
    inside = (codes == 1).any(axis=0)
    status = np.where(inside, ebin, el.OUTSIDE)
    status = np.where((codes == 2).any(axis=0), el.AMBIGUOUS, status)
    status = np.where(valid, status, el.INVALID)
    return status.astype(np.int64), codes


def count_numpy(ra, dec, energy, circles, bounds, edges, etol, out):
    """Add the events' counts to ``out`` (n_circles + 1, n_energy) in place.

    Row ``k < n_circles``: events inside circle ``k``; last row: events inside at least
    one of circles ``1 ..`` (the off regions' union, as gammapy's compound region).

    Returns
    -------
    ambiguous : ndarray of int64
        Indices of the ambiguous events (not counted), ascending.
    n_invalid : int
        Events with NaN/inf coordinates or energy (counted nowhere).
    """
    status, codes = event_status_numpy(ra, dec, energy, circles, bounds, edges, etol)
    counted = status >= 0
    n_circles, n_energy = circles.shape[1], edges.shape[0] - 1
    member = codes[:, counted] == 1
    rows = np.vstack([member, member[1:].any(axis=0, keepdims=True)])
    bins = status[counted]
    for k in range(n_circles + 1):
        out[k] += np.bincount(bins[rows[k]], minlength=n_energy)
    return np.flatnonzero(status == el.AMBIGUOUS).astype(np.int64), int(
        (status == el.INVALID).sum()
    )


def count_in_circles(backend, ra, dec, energy, circles, bounds, screen, edges, etol, out):
    """Operation ``count_in_circles`` (numpy): see :func:`count_numpy` (``screen``, the
    float32 screen of the numba kernel, is not used)."""
    return count_numpy(ra, dec, energy, circles, bounds, edges, etol, out)
