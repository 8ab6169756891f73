"""Event binning kernels: event columns -> bin codes -> counts cube.

The per-event math is :func:`rtafast_kernels.binning_element.event_bin`. This
module holds the NumPy reference (vectorised twin of the element math) and the
numba kernels (the element math compiled, events in parallel, counts accumulated
serially — about a nanosecond per event); the CUDA kernel is in
:mod:`rtafast_kernels.binning_cuda`. Backends expose them as ``bin_events``.
"""

import math

import numba
import numpy as np

from . import binning_element as el
from .jit import cpu_functions, cpu_kernel

__all__ = ["bin_codes_numpy", "bin_events_numpy", "bin_events_numba"]

_event_bin = cpu_functions(el).event_bin


def _near_edge(pix, tolerance):
    shifted = pix + 0.5
    frac = shifted - np.floor(shifted)
    return (frac < tolerance) | (frac > 1.0 - tolerance)


def bin_codes_numpy(lon, lat, energy, p, scaled_edges):
    """Vectorised reference of :func:`~rtafast_kernels.binning_element.event_bin`."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        lon_r, lat_r = np.deg2rad(lon), np.deg2rad(lat)
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


def bin_events_numpy(lon, lat, energy, p, scaled_edges, cube):
    """Add the counted events to ``cube`` (flat float64) and return every event's code."""
    codes = bin_codes_numpy(lon, lat, energy, p, scaled_edges)
    counted = codes[codes >= 0]
    cube += np.bincount(counted, minlength=cube.size).astype(cube.dtype)
    return codes


def _codes_source(lon, lat, energy, p, scaled_edges, codes):
    for i in numba.prange(lon.shape[0]):
        codes[i] = _event_bin(float(lon[i]), float(lat[i]), float(energy[i]), p, scaled_edges)


_codes_parallel = cpu_kernel(_codes_source, parallel=True)
_codes_serial = cpu_kernel(_codes_source)
#: Below this many events the serial compilation is used (a bunch of real-time
#: analysis: waking the thread pool costs more than binning it).
PARALLEL_THRESHOLD = 65536


def _accumulate_source(codes, cube):
    for i in range(codes.shape[0]):
        code = codes[i]
        if code >= 0:
            cube[code] += 1.0


_accumulate = cpu_kernel(_accumulate_source)


def bin_events_numba(lon, lat, energy, p, scaled_edges, cube):
    """numba twin of :func:`bin_events_numpy`."""
    codes = np.empty(lon.shape[0], dtype=np.int64)
    kernel = _codes_parallel if lon.shape[0] > PARALLEL_THRESHOLD else _codes_serial
    kernel(lon, lat, energy, p, scaled_edges, codes)
    _accumulate(codes, cube)
    return codes


del math
