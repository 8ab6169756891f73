"""numba binning kernel: vectorised float32 screening plus the exact recheck.

The event loop (:mod:`rtafast_kernels.binning.blocks`) runs the branch-free float32
twin :func:`rtafast_kernels.binning.fast_element.screen_code` of the exact
:func:`rtafast_kernels.binning.element.event_bin`; events it leaves
(:data:`~rtafast_kernels.binning.fast_element.RECHECK`) are binned with the exact
math in the same pass. This module packs the screening parameters and plans a call:
serial, parallel into per-thread histograms, or parallel codes added afterwards.
"""

import threading

import numba
import numpy as np

from ..jit import cpu_kernel
from ..launch import EVENT_PARALLEL_THRESHOLD, free_threads
from ..launch import threads as _threads
from .blocks import bin_block, bin_blocks_parallel, merge, scatter_blocks
from .reference import BinOutcome
from .screening_params import fast_params

__all__ = [
    "PARALLEL_THRESHOLD",
    "DENSE_EVENTS_PER_BIN",
    "fast_params",
    "screening_energy",
    "bin_events_numba",
    "bin_events",
    "scatter_add",
]


_PRIVATE = threading.local()
#: Largest reused private-histogram buffer (values).
_PRIVATE_MAX = 1 << 25
#: Below this many events one serial block bins straight into the cube (a bunch of
#: real-time analysis: waking the thread pool costs more than binning it).
PARALLEL_THRESHOLD = EVENT_PARALLEL_THRESHOLD
#: Parallel blocks per thread (handed out dynamically).
_BLOCKS_PER_THREAD = 8
#: Fewest events per parallel block.
_MIN_BLOCK = 4096
#: Parallel calls with more events than ``DENSE_EVENTS_PER_BIN`` times the cube's bins
#: fill per-thread histograms (merged at a cost per bin and thread); sparser ones write
#: the counted events' bins, added to the cube serially (a cost per counted event).
DENSE_EVENTS_PER_BIN = 1.0


def _private_histograms(n_rows, n_bins, dtype):
    """Zeroed ``(n_rows, n_bins)`` histograms (one per thread), reused between calls.

    ``merge`` zeroes them again as it adds them to the cube, which is cheaper than
    fresh pages (page faults) every call.
    """
    cached = getattr(_PRIVATE, "histograms", None)
    if cached is None or cached.shape != (n_rows, n_bins) or cached.dtype != dtype:
        cached = np.zeros((n_rows, n_bins), dtype=dtype)
        _PRIVATE.histograms = cached if n_rows * n_bins <= _PRIVATE_MAX else None
    return cached


def _scratch(name, n, dtype):
    """A work array of at least ``n`` values, reused between calls of this thread.

    The kernel writes only a few of its values (the results are copied out), so a
    fresh multi-megabyte array every call would cost its allocation and page faults.
    """
    cached = getattr(_PRIVATE, name, None)
    if cached is None or cached.shape[0] < n or cached.dtype != dtype:
        cached = np.empty(max(n, 1), dtype=dtype)
        setattr(_PRIVATE, name, cached if n <= _PRIVATE_MAX else None)
    return cached[:n]


def screening_energy(energy):
    """``(energy32, bits)``: the float32 energies the screening loop reads, and their bits.

    float32 columns are used as they are; others are rounded to float32 (the
    screening bands hold the rounding; too large or too small values become inf or
    0 and go to the exact math, which reads the column itself).
    """
    if energy.dtype == np.float32:
        energy32 = np.ascontiguousarray(energy)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            energy32 = np.asarray(energy, dtype=np.float32)
    return energy32, energy32.view(np.int32)


def _plan(n, n_bins, n_threads):
    """``(n_blocks, to_hist, n_threads)`` of a call with ``n`` events into ``n_bins``."""
    if n <= PARALLEL_THRESHOLD or n_threads <= 1:
        return 1, True, 1
    n_blocks = max(1, min(n_threads * _BLOCKS_PER_THREAD, n // _MIN_BLOCK))
    if n_blocks == 1:
        return 1, True, 1
    return n_blocks, n > DENSE_EVENTS_PER_BIN * n_bins, n_threads


def bin_events_numba(lon, lat, energy, p, scaled_edges, cube, keep_codes=False, n_threads=None):
    """numba twin of :func:`bin_events_numpy` (vectorised float32 screening + exact recheck).

    One serial block into the cube for small calls; otherwise blocks in parallel into
    per-thread float32 histograms (dense calls) or as codes added afterwards (sparse
    calls: few events for the cube's size, e.g. a real event list into a large cube).
    ``n_threads``: most threads to use (default: numba's).
    """
    n = lon.shape[0]
    n_bins = cube.shape[0]
    energy32, bits = screening_energy(energy)
    q = fast_params(p, scaled_edges, np.float32)
    available = numba.get_num_threads()
    n_threads = available if n_threads is None else min(n_threads, available)
    n_blocks, to_hist, n_threads = _plan(n, n_bins, n_threads)
    code_dtype = np.int32 if n_bins < 2**31 else np.int64
    codes_out = _scratch("codes", n if keep_codes or not to_hist else 0, code_dtype)
    amb_out = _scratch("ambiguous", n, np.int64)
    counters = np.zeros((n_blocks, 4), dtype=np.int64)
    events = (lon, lat, energy, energy32, bits)
    geometry = (q, p, scaled_edges)
    outputs = (keep_codes, codes_out, amb_out)
    if n_blocks == 1:  # serial, straight into the cube
        bin_block(events, geometry, cube, True, 0, n, outputs, counters[0])
        counted, outside, invalid, n_ambiguous = counters[0].tolist()
        codes = codes_out[:counted].astype(np.int64) if keep_codes else None
        return BinOutcome(counted, outside, invalid, amb_out[:n_ambiguous].copy(), codes)
    per_block = (n + n_blocks - 1) // n_blocks
    starts = np.arange(n_blocks, dtype=np.int64) * per_block
    if not to_hist:
        private = np.zeros((1, 1), dtype=np.float32)  # not touched
        with _threads(n_threads):
            bin_blocks_parallel(events, geometry, private, False, outputs, counters)
        scatter_blocks(cube, codes_out, starts, counters[:, 0])
    else:
        # every thread fills a warm float32 histogram (exact up to 2^24 counts per bin,
        # so for calls of up to 2^24 events; half the cache footprint of float64),
        # merged into the cube by a parallel pass that touches the cube's pages in order
        dtype = np.float32 if n <= 1 << 24 else np.float64
        private = _private_histograms(n_threads, n_bins, dtype)
        try:
            with _threads(n_threads):
                bin_blocks_parallel(events, geometry, private, True, outputs, counters)
                merge(cube, private)
        except BaseException:
            _PRIVATE.histograms = None  # possibly not zero any more
            raise
    ambiguous = _gather(amb_out, starts, counters[:, 3], np.int64)
    codes = _gather(codes_out, starts, counters[:, 0], np.int64) if keep_codes else None
    totals = counters.sum(axis=0)
    return BinOutcome(int(totals[0]), int(totals[1]), int(totals[2]), ambiguous, codes)


def _gather(scratch, starts, counts, dtype):
    """The blocks' pieces ``scratch[s : s + k]`` end to end, as a new ``dtype`` array."""
    pieces = [scratch[s : s + k] for s, k in zip(starts, counts, strict=True)]
    return np.concatenate(pieces).astype(dtype, copy=False)


def _scatter_add_source(cube, codes, weight):
    for i in range(codes.shape[0]):
        cube[codes[i]] += weight


_scatter_add = cpu_kernel(_scatter_add_source)


def bin_events(backend, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
    """Operation ``bin_events`` (numba); see :func:`.reference.bin_events`.

    Parallel calls use the threads that are free now (:func:`free_threads`).
    """
    n_threads = free_threads() if lon.shape[0] > PARALLEL_THRESHOLD else 1
    return bin_events_numba(
        lon, lat, energy, params, scaled_edges, cube, keep_codes, n_threads=n_threads
    )


def scatter_add(backend, cube, codes, weight):
    """Operation ``scatter_add`` (numba): ``cube[codes] += weight``, repeated codes summed."""
    _scatter_add(cube, codes, float(weight))
