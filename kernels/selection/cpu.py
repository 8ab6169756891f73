"""Event selection compiled with numba, parallel over events above a threshold."""

import numba
import numpy as np

from ..jit import cpu_functions, cpu_kernel
from ..launch import EVENT_PARALLEL_THRESHOLD
from . import element as el

__all__ = ["select_numba", "select_events"]

_event_selected = cpu_functions(el).event_selected


def _select_source(time, energy, ra, dec, p, intervals, codes):
    for i in numba.prange(time.shape[0]):
        codes[i] = _event_selected(
            float(time[i]), float(energy[i]), float(ra[i]), float(dec[i]), p, intervals
        )


_select_parallel = cpu_kernel(_select_source, parallel=True)
_select_serial = cpu_kernel(_select_source)


def select_numba(time, energy, ra, dec, p, intervals):
    """numba twin of :func:`select_numpy`."""
    codes = np.empty(time.shape[0], dtype=np.int8)
    kernel = _select_parallel if time.shape[0] > EVENT_PARALLEL_THRESHOLD else _select_serial
    kernel(time, energy, ra, dec, p, intervals, codes)
    return codes


def select_events(backend, time, energy, ra, dec, params, intervals):
    """Operation ``select_events`` (numba): code per event, 1 selected, 0 rejected, 2 ambiguous."""
    return select_numba(time, energy, ra, dec, params, intervals)
