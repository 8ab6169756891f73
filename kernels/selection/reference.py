"""Event selection, NumPy reference of :func:`rtafast_kernels.selection.element.event_selected`."""

import numpy as np

from . import element as el

__all__ = ["select_numpy", "select_events"]


def select_numpy(time, energy, ra, dec, p, intervals):
    """Vectorised reference of :func:`~rtafast_kernels.selection.element.event_selected`."""
    time, energy = np.asarray(time, np.float64), np.asarray(energy, np.float64)
    selected = (p[el.S_EMIN] <= energy) & (energy < p[el.S_EMAX])
    ambiguous = np.zeros(time.shape, dtype=bool)
    if intervals.size:
        starts, stops = intervals[0::2], intervals[1::2]
        inside = ((starts[:, None] <= time) & (time < stops[:, None])).any(axis=0)
        tol = p[el.S_TIME_TOL]
        near = (np.abs(time - starts[:, None]) <= tol) | (np.abs(time - stops[:, None]) <= tol)
        ambiguous |= near.any(axis=0)
        selected &= inside | ambiguous
    if p[el.S_USE_CONE] == 1.0:
        lon, lat = np.deg2rad(np.asarray(ra, np.float64)), np.deg2rad(np.asarray(dec, np.float64))
        c = p[el.S_CONE : el.S_CONE + 3]
        dot = (
            c[0] * np.cos(lat) * np.cos(lon) + c[1] * np.cos(lat) * np.sin(lon) + c[2] * np.sin(lat)
        )
        edge = np.abs(dot - p[el.S_COS_RADIUS]) <= p[el.S_CONE_TOL]
        ambiguous |= edge & selected
        selected &= (dot >= p[el.S_COS_RADIUS]) | edge
    energy_ok = (p[el.S_EMIN] <= energy) & (energy < p[el.S_EMAX])
    codes = np.where(selected & energy_ok, np.where(ambiguous, 2, 1), 0)
    return codes.astype(np.int8)


def select_events(backend, time, energy, ra, dec, params, intervals):
    """Operation ``select_events`` (numpy): code per event, 1 selected, 0 rejected, 2 ambiguous."""
    return select_numpy(time, energy, ra, dec, params, intervals)
