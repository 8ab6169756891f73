"""Event selection kernels: NumPy reference and numba twin (CUDA: selection_cuda)."""

import numba
import numpy as np

from . import selection_element as el
from .jit import cpu_functions, cpu_kernel

__all__ = ["select_numpy", "select_numba"]

_event_selected = cpu_functions(el).event_selected


def select_numpy(time, energy, ra, dec, p, intervals):
    """Vectorised reference of :func:`~rtafast_kernels.selection_element.event_selected`."""
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


def _select_source(time, energy, ra, dec, p, intervals, codes):
    for i in numba.prange(time.shape[0]):
        codes[i] = _event_selected(
            float(time[i]), float(energy[i]), float(ra[i]), float(dec[i]), p, intervals
        )


_select_parallel = cpu_kernel(_select_source, parallel=True)
_select_serial = cpu_kernel(_select_source)
#: Below this many events the serial compilation is used.
PARALLEL_THRESHOLD = 65536


def select_numba(time, energy, ra, dec, p, intervals):
    """numba twin of :func:`select_numpy`."""
    codes = np.empty(time.shape[0], dtype=np.int8)
    kernel = _select_parallel if time.shape[0] > PARALLEL_THRESHOLD else _select_serial
    kernel(time, energy, ra, dec, p, intervals, codes)
    return codes
