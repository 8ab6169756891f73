"""numba binning kernel: vectorised float32 screening plus the exact recheck.

The event loop runs the branch-free polynomial twin
:func:`rtafast_kernels.binning.fast_element.fast_event_bin` of the exact
:func:`rtafast_kernels.binning.element.event_bin`; events it leaves
(:data:`~rtafast_kernels.binning.fast_element.RECHECK`) are binned with the exact
math in the same pass.
"""

import functools
import threading

import numba
import numpy as np

from ..jit import cpu_functions, cpu_kernel
from ..launch import EVENT_PARALLEL_THRESHOLD
from . import element as el
from . import fast_element as fe
from .reference import BinOutcome

__all__ = ["fast_params", "bin_events_numba", "bin_events", "scatter_add"]

_event_bin = cpu_functions(el).event_bin
_fast = cpu_functions(fe)
_fast_event_bin, _lon_offset = _fast.fast_event_bin, _fast.lon_offset


_BITS = {  # integer view of the energy column: (dtype, mantissa bits, exponent bias)
    np.dtype(np.float32): (np.int32, 23, 127),
    np.dtype(np.float64): (np.int64, 52, 1023),
}


def fast_params(p, scaled_edges, energy_dtype):
    """Packed parameters (float32 tuple) of the float32 screening path (cached).

    See :func:`_fast_params`.
    """
    p = np.ascontiguousarray(p, dtype=np.float64)
    edges = np.ascontiguousarray(scaled_edges, dtype=np.float64)
    return _cached_fast_params(p.tobytes(), edges.tobytes(), np.dtype(energy_dtype).str)


@functools.lru_cache(maxsize=64)
def _cached_fast_params(p_bytes, edges_bytes, energy_dtype):
    p = np.frombuffer(p_bytes, dtype=np.float64)
    return _fast_params(p, np.frombuffer(edges_bytes, dtype=np.float64), energy_dtype)


def _fast_params(p, scaled_edges, energy_dtype):
    """Packed parameters (float32 tuple) of the float32 screening path.

    Derived from the exact path's packed geometry ``p`` and scaled energy edges;
    see :mod:`rtafast_kernels.binning.fast_element`. The edge bands hold float32's
    rounding with a margin of ~10 over the largest errors measured (tests/
    test_binning_fast.py checks a factor 4): ulps of the largest pixel coordinate,
    and ~1e-8 rad of direction error converted to pixels. Axes whose edges are not
    uniform in their scale send every event to the exact math.
    """
    rotation = p[el.P_ROT : el.P_ROT + 9].reshape(3, 3)
    tan = p[el.P_PROJ] == el.PROJ_TAN
    centre = np.array([0.0, 0.0, 1.0]) if tan else np.array([1.0, 0.0, 0.0])
    reference = rotation.T @ centre  # the projection centre in the event frame
    lon0 = float(np.float32(np.rad2deg(np.arctan2(reference[1], reference[0])) % 360.0))
    lat0 = float(np.float32(np.rad2deg(np.arcsin(np.clip(reference[2], -1.0, 1.0)))))
    lon0_r, lat0_r = np.deg2rad(lon0), np.deg2rad(lat0)
    c, s = np.cos(lon0_r), np.sin(lon0_r)
    rotation_lon0 = rotation @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    reference_rotated = np.array([np.cos(lat0_r), 0.0, np.sin(lat0_r)])

    q = np.zeros(fe.FAST_SIZE)
    q[fe.F_LON0], q[fe.F_LAT0] = lon0, lat0
    q[fe.F_SIN_LAT0], q[fe.F_COS_LAT0] = np.sin(lat0_r), np.cos(lat0_r)
    q[fe.F_ROT : fe.F_ROT + 9] = rotation_lon0.ravel()
    q[fe.F_CENTRE : fe.F_CENTRE + 3] = rotation_lon0 @ reference_rotated - centre
    q[fe.F_CRPIX : fe.F_CRPIX + 2] = p[el.P_CRPIX : el.P_CRPIX + 2]
    q[fe.F_LIN : fe.F_LIN + 4] = p[el.P_LIN : el.P_LIN + 4]
    q[fe.F_NX], q[fe.F_NY], q[fe.F_NE] = p[el.P_NX], p[el.P_NY], p[el.P_NE]
    pixel_to_deg = np.abs(np.linalg.inv(p[el.P_LIN : el.P_LIN + 4].reshape(2, 2)))
    pixel_rad = np.deg2rad(np.min(np.hypot(pixel_to_deg[0], pixel_to_deg[1])))
    largest = max(p[el.P_NX], p[el.P_NY]) + np.abs(p[el.P_CRPIX : el.P_CRPIX + 2]).max()
    q[fe.F_TOL] = max(p[el.P_TOL], 5e-4 + 4e-7 * largest + 4e-8 / pixel_rad)
    q[fe.F_ETOL] = max(p[el.P_ETOL], 2e-5 + 1e-7 * p[el.P_NE])
    q[fe.F_PROJ], q[fe.F_LOG] = p[el.P_PROJ], p[el.P_LOG]
    widths = np.diff(scaled_edges)
    q[fe.F_E0] = scaled_edges[0]
    q[fe.F_EINV] = 1.0 / widths.mean()
    _, shift, bias = _BITS[np.dtype(energy_dtype)]
    q[fe.F_BITS_SHIFT], q[fe.F_BITS_BIAS], q[fe.F_BITS_SCALE] = shift, bias, 2.0**-shift
    q[fe.F_EMIN] = 1e-30  # zero and denormals: the exact math decides
    uniform = np.all(np.abs(widths - widths.mean()) <= 1e-9 * np.abs(widths.mean()))
    if not uniform:
        q[fe.F_EMIN] = np.inf
    # CAR events beyond the series' domain are outside the map if the map lies within it
    corners = np.array([[-0.5, -0.5], [p[el.P_NX] - 0.5, p[el.P_NY] - 0.5]]) - p[el.P_CRPIX]
    extent = (np.abs(corners) @ pixel_to_deg.T).max(axis=0) + 1.0  # deg, plus a margin
    within = np.all(extent < np.rad2deg(np.arctan(fe.SERIES_MAX)))
    q[fe.F_FAR_CODE] = el.OUTSIDE if within else fe.RECHECK
    return tuple(np.float32(value) for value in q)


#: Events per inner chunk: the vectorised pass writes the chunk's codes here.
_CHUNK = 1024
#: Parallel blocks per thread (handed out dynamically; each thread fills its own
#: private histogram, merged into the cube afterwards).
_BLOCKS_PER_THREAD = 8
#: Fewest events per parallel block.
_MIN_BLOCK = 16384


def _bin_block_source(
    lon,
    lat,
    energy,
    bits,
    q,
    p,
    scaled_edges,
    hist,
    start,
    stop,
    keep_codes,
    codes_out,
    amb_out,
    counters,
):
    """Bin events ``start:stop`` into ``hist``; write ``counters`` (4 values).

    ``counters = (counted, outside, invalid, ambiguous)``; the ambiguous indices
    (and, with ``keep_codes``, the counted bins) are written from ``start`` on in
    ``amb_out`` (``codes_out``).
    """
    local = np.empty(_CHUNK, dtype=np.int64)
    rare = np.empty(_CHUNK + 1, dtype=np.int64)
    dump_mask = 1  # events not counted add 0 to bin ``j & dump_mask`` (< n_bins)
    while 2 * dump_mask <= min(hist.shape[0], _CHUNK):
        dump_mask *= 2
    dump_mask -= 1
    n_counted = 0
    n_invalid = 0
    n_ambiguous = 0
    for chunk in range(start, stop, _CHUNK):
        size = min(stop - chunk, _CHUNK)
        # views, so the loop's indices are provably >= 0 (no wraparound code): vectorised
        lon_c, lat_c = lon[chunk : chunk + size], lat[chunk : chunk + size]
        energy_c, bits_c = energy[chunk : chunk + size], bits[chunk : chunk + size]
        for j in range(size):  # no calls, no branches: vectorised
            local[j] = _fast_event_bin(
                _lon_offset(np.float64(lon_c[j]), np.float64(q[fe.F_LON0])),
                np.float32(lat_c[j] - q[fe.F_LAT0]),
                np.float32(energy_c[j]),
                bits_c[j],
                q,
            )
        n_rare = 0
        for j in range(size):  # branch-free histogram of the counted events
            code = local[j]
            counted = code >= 0
            # events not counted add 0 to a bin that changes with every event (no
            # store-to-load chain); counts are >= 0, so ``x + 0.0 == x`` exactly
            hist[code if counted else j & dump_mask] += 1.0 if counted else 0.0
            if keep_codes:  # overwritten by the next event when not counted
                codes_out[start + n_counted] = code
            n_counted += counted
            rare[n_rare] = j  # kept only for recheck, ambiguous, invalid events
            n_rare += code < el.OUTSIDE
        for r in range(n_rare):
            j = rare[r]
            i = chunk + j
            code = local[j]
            if code == fe.RECHECK:
                code = _event_bin(
                    np.float64(lon[i]), np.float64(lat[i]), np.float64(energy[i]), p, scaled_edges
                )
            if code >= 0:
                hist[code] += 1.0
                if keep_codes:
                    codes_out[start + n_counted] = code
                n_counted += 1
            elif code == el.INVALID:
                n_invalid += 1
            elif code == el.AMBIGUOUS:
                amb_out[start + n_ambiguous] = i
                n_ambiguous += 1
    n_outside = (stop - start) - n_counted - n_invalid - n_ambiguous
    counters[0] = n_counted
    counters[1] = n_outside
    counters[2] = n_invalid
    counters[3] = n_ambiguous


# compiled as a function of its own (not inlined into the prange loop below, whose
# body numba compiles without ``error_model="numpy"``, which vectorisation needs)
_bin_block = cpu_kernel(_bin_block_source, error_model="numpy")


def _bin_blocks_source(
    lon,
    lat,
    energy,
    bits,
    q,
    p,
    scaled_edges,
    private,
    keep_codes,
    codes_out,
    amb_out,
    counters,
):
    """Bin events block by block, thread t into its histogram ``private[t]``.

    Blocks are handed to the threads dynamically (see :func:`bin_events_numba`), so a
    thread descheduled on a shared machine does not hold the others up.
    """
    n = lon.shape[0]
    n_blocks = counters.shape[0]
    per_block = (n + n_blocks - 1) // n_blocks
    for block in numba.prange(n_blocks):
        start = block * per_block
        stop = min(n, start + per_block)
        hist = private[numba.get_thread_id()]
        _bin_block(
            lon,
            lat,
            energy,
            bits,
            q,
            p,
            scaled_edges,
            hist,
            start,
            stop,
            keep_codes,
            codes_out,
            amb_out,
            counters[block],
        )


_bin_blocks_parallel = cpu_kernel(_bin_blocks_source, parallel=True)


def _merge_source(cube, private):
    """``cube += private.sum(axis=0)``, leaving ``private`` zeroed for the next call."""
    n = cube.shape[0]
    n_chunks = (n + 65535) // 65536
    for c in numba.prange(n_chunks):
        for b in range(private.shape[0]):
            for i in range(c * 65536, min(n, (c + 1) * 65536)):
                cube[i] += private[b, i]
                private[b, i] = 0.0


_merge = cpu_kernel(_merge_source, parallel=True)

_PRIVATE = threading.local()


def _private_histograms(n_rows, n_bins, dtype):
    """Zeroed ``(n_rows, n_bins)`` histograms (one per thread), reused between calls.

    ``_merge`` zeroes them again as it adds them to the cube, which is cheaper than
    fresh pages (page faults) every call.
    """
    cached = getattr(_PRIVATE, "histograms", None)
    if cached is None or cached.shape != (n_rows, n_bins) or cached.dtype != dtype:
        cached = np.zeros((n_rows, n_bins), dtype=dtype)
        _PRIVATE.histograms = cached if n_rows * n_bins <= _PRIVATE_MAX else None
    return cached


def _scratch(name, n):
    """An int64 work array of at least ``n`` values, reused between calls of this thread.

    The kernel writes only a few of its values (the results are copied out), so a
    fresh multi-megabyte array every call would cost its allocation and page faults.
    """
    cached = getattr(_PRIVATE, name, None)
    if cached is None or cached.shape[0] < n:
        cached = np.empty(max(n, 1), dtype=np.int64)
        setattr(_PRIVATE, name, cached if n <= _PRIVATE_MAX else None)
    return cached[:n]


#: Largest reused private-histogram buffer (float64 values).
_PRIVATE_MAX = 1 << 25
#: Below this many events one serial block is used (a bunch of real-time analysis:
#: waking the thread pool and merging private histograms cost more than binning it).
PARALLEL_THRESHOLD = EVENT_PARALLEL_THRESHOLD


def bin_events_numba(lon, lat, energy, p, scaled_edges, cube, keep_codes=False):
    """numba twin of :func:`bin_events_numpy` (vectorised float32 screening + exact recheck)."""
    n = lon.shape[0]
    parallel = n > PARALLEL_THRESHOLD
    n_threads = numba.get_num_threads() if parallel else 1
    n_blocks = max(1, min(n_threads * _BLOCKS_PER_THREAD, n // _MIN_BLOCK)) if parallel else 1
    energy = np.ascontiguousarray(energy)
    if energy.dtype not in _BITS:
        energy = energy.astype(np.float64)
    bits = energy.view(_BITS[energy.dtype][0])
    q = fast_params(p, scaled_edges, energy.dtype)
    codes_out = _scratch("codes", n if keep_codes else 0)
    amb_out = _scratch("ambiguous", n)
    counters = np.zeros((n_blocks, 4), dtype=np.int64)
    common = (lon, lat, energy, bits, q, p, scaled_edges)
    if n_blocks == 1:  # serial, straight into the cube
        _bin_block(*common, cube, 0, n, keep_codes, codes_out, amb_out, counters[0])
    else:
        # every thread fills a warm float32 histogram (exact up to 2^24 counts per bin,
        # so for calls of up to 2^24 events; half the cache footprint of float64),
        # merged into the cube by a parallel pass that touches the cube's pages in order
        dtype = np.float32 if n <= 1 << 24 else np.float64
        private = _private_histograms(n_threads, cube.shape[0], dtype)
        try:
            with numba.parallel_chunksize(1):  # dynamic: one block at a time per thread
                _bin_blocks_parallel(*common, private, keep_codes, codes_out, amb_out, counters)
            _merge(cube, private)
        except BaseException:
            _PRIVATE.histograms = None  # possibly not zero any more
            raise
    per_block = (n + n_blocks - 1) // n_blocks if n_blocks else 0
    starts = np.arange(n_blocks) * per_block
    ambiguous = (
        np.concatenate([amb_out[s : s + k] for s, k in zip(starts, counters[:, 3], strict=True)])
        if n
        else np.zeros(0, np.int64)
    )
    codes = None
    if keep_codes:
        pieces = zip(starts, counters[:, 0], strict=True)
        codes = np.concatenate([codes_out[s : s + k] for s, k in pieces])
    totals = counters.sum(axis=0)
    return BinOutcome(int(totals[0]), int(totals[1]), int(totals[2]), ambiguous, codes)


def _scatter_add_source(cube, codes, weight):
    for i in range(codes.shape[0]):
        cube[codes[i]] += weight


_scatter_add = cpu_kernel(_scatter_add_source)


def bin_events(backend, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
    """Operation ``bin_events`` (numba); see :func:`.reference.bin_events`."""
    return bin_events_numba(lon, lat, energy, params, scaled_edges, cube, keep_codes)


def scatter_add(backend, cube, codes, weight):
    """Operation ``scatter_add`` (numba): ``cube[codes] += weight``, repeated codes summed."""
    _scatter_add(cube, codes, float(weight))
