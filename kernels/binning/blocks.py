"""numba loops of the binning kernel: one block of events, blocks in parallel, merges.

A block bins events ``start:stop`` chunk by chunk (:data:`CHUNK` events):

0. a vectorised test of the offsets from the map's reference and of the energy lists
   the events that are not outside the map for sure
   (:func:`rtafast_kernels.binning.fast_element.near_map`); where they are a third of
   the chunk or fewer, their columns are gathered and only they are screened (the
   gather costs about what the screening saves at a half: a CTA 1DC Galactic-plane
   run into a 0.5-50 TeV, 5 deg map keeps ~10 % of its events, the H.E.S.S. Crab
   runs ~50 %); after a chunk where it would not pay, the next :data:`_REST` chunks
   skip it;
1. the screening, vectorised: every (listed) event's int32 code from the float32 twin
   :func:`rtafast_kernels.binning.fast_element.screen_code` (a bin, ``OUTSIDE`` or
   ``RECHECK``), in four loops (its stages; the projection a constant of its loop);
2. a branch-free loop that lists the events not ``OUTSIDE``;
3. a loop over those that adds them to a histogram (``to_hist``) or writes their
   bins to ``codes_out``; the ``RECHECK`` ones (a few percent at most) first get the
   exact float64 math :func:`rtafast_kernels.binning.element.event_bin`, which also
   says ``INVALID`` or ``AMBIGUOUS``; ``AMBIGUOUS`` events (from the screening or the
   exact math) are left to the caller: gammapy's arithmetic.

Parallel calls hand blocks to the threads dynamically; each thread adds to its own
histogram (merged into the cube by :func:`merge`) or writes codes that
:func:`scatter_blocks` adds to the cube afterwards.
"""

import numba
import numpy as np

from ..jit import cpu, cpu_functions, cpu_kernel
from . import element as el
from . import fast_element as fe

__all__ = ["CHUNK", "bin_block", "bin_blocks_parallel", "merge", "scatter_blocks"]

_event_bin = cpu_functions(el).event_bin
_fast = cpu_functions(fe)
_screen_native, _screen_project = _fast.screen_native, _fast.screen_project
_energy_pixel, _screen_bins = _fast.energy_pixel, _fast.screen_bins
_near_map = _fast.near_map

#: Events per inner chunk: the screening loop writes the chunk's codes here.
CHUNK = 1024
#: Chunks screened whole, without stage 0, after one where stage 0 kept more than a
#: third of the events (a map covering many of the events: it would not pay).
_REST = 7
_TAN = np.float32(el.PROJ_TAN)


def _bin_block_source(events, geometry, hist, to_hist, start, stop, outputs, counters):
    """Bin events ``start:stop``; write ``counters = (counted, outside, invalid, ambiguous)``.

    ``events = (lon, lat, energy, energy32, bits)``: the columns (float32 ``energy32`` and its
    int32 ``bits`` from :func:`rtafast_kernels.binning.cpu.screening_energy`);
    ``geometry = (q, p, scaled_edges)``: the float32 screening parameters, the exact
    math's parameters and the scaled energy edges; ``outputs = (keep_codes, codes_out,
    amb_out)``. ``to_hist``: add the counted events to ``hist``; otherwise write their
    bins from ``start`` on in ``codes_out`` (as also with ``keep_codes``). The ambiguous
    events' indices are written from ``start`` on in ``amb_out``.
    """
    lon, lat, energy, energy32, bits = events
    q, p, scaled_edges = geometry
    keep_codes, codes_out, amb_out = outputs
    local = np.empty(CHUNK, dtype=np.int32)
    mx, my, mz = (
        np.empty(CHUNK, np.float32),
        np.empty(CHUNK, np.float32),
        np.empty(CHUNK, np.float32),
    )
    px, py = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32)
    status, pe = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.float32)
    kept = np.empty(CHUNK + 1, dtype=np.int32)
    near = np.empty(CHUNK + 1, dtype=np.int32)
    g_lon, g_lat = np.empty(CHUNK, lon.dtype), np.empty(CHUNK, lat.dtype)
    g_energy32, g_bits = np.empty(CHUNK, np.float32), np.empty(CHUNK, np.int32)
    write_codes = keep_codes or not to_hist
    tan = q[fe.F_PROJ] == _TAN
    n_counted = 0
    n_invalid = 0
    n_ambiguous = 0
    rest = 0  # chunks left to screen whole, without stage 0
    for chunk in range(start, stop, CHUNK):
        size = min(stop - chunk, CHUNK)
        c_lon, c_lat = lon[chunk : chunk + size], lat[chunk : chunk + size]
        c_energy32, c_bits = energy32[chunk : chunk + size], bits[chunk : chunk + size]
        n_near = size
        tested = rest == 0
        if tested:
            n_near = _near_events(c_lon, c_lat, c_energy32, q, size, local, near)
        else:
            rest -= 1
        gathered = 3 * n_near <= size  # else the whole chunk: no gather
        if tested and not gathered:
            rest = _REST
        n_screened = n_near if gathered else size
        if gathered:
            for r in range(n_near):
                i = chunk + near[r]
                g_lon[r], g_lat[r] = lon[i], lat[i]
                g_energy32[r], g_bits[r] = energy32[i], bits[i]
            _screen(g_lon, g_lat, g_energy32, g_bits, q, tan, n_near, local, mx, my, mz, px, py,
                    status, pe)
        else:
            _screen(c_lon, c_lat, c_energy32, c_bits, q, tan, size, local, mx, my, mz, px, py,
                    status, pe)
        n_kept = 0
        for r in range(n_screened):  # branch-free: the events counted or to recheck
            kept[n_kept] = r
            n_kept += local[r] != el.OUTSIDE
        for k in range(n_kept):
            r = kept[k]
            code = local[r]
            if code < 0:
                i = chunk + (near[r] if gathered else r)
                if code == fe.RECHECK:  # the exact math (a percent of the events or so)
                    code = _event_bin(
                        np.float64(lon[i]),
                        np.float64(lat[i]),
                        np.float64(energy[i]),
                        p,
                        scaled_edges,
                    )
                if code == el.INVALID:
                    n_invalid += 1
                elif code == el.AMBIGUOUS:
                    amb_out[start + n_ambiguous] = i
                    n_ambiguous += 1
                if code < 0:
                    continue
            if to_hist:
                hist[code] += 1.0
            if write_codes:
                codes_out[start + n_counted] = code
            n_counted += 1
    counters[0] = n_counted
    counters[1] = (stop - start) - n_counted - n_invalid - n_ambiguous
    counters[2] = n_invalid
    counters[3] = n_ambiguous


def _near_events_source(lon, lat, energy32, q, size, flags, near):
    """Write the indices of the events not outside the map for sure to ``near``; their
    number. ``flags``: int32 work array of at least ``size`` values."""
    lon, lat, energy32, flags = lon[:size], lat[:size], energy32[:size], flags[:size]
    for j in range(size):  # vectorised
        flags[j] = _near_map(lon[j], lat[j], energy32[j], q)
    n_near = 0
    for j in range(size):  # branch-free compaction
        near[n_near] = j
        n_near += flags[j]
    return n_near


_near_events = cpu(_near_events_source)


def _screen_source(lon, lat, energy32, bits, q, tan, size, local, mx, my, mz, px, py, status, pe):
    """``local[:size]``: the screening codes of events ``:size``.

    Four vectorised loops, one per stage of
    :func:`rtafast_kernels.binning.fast_element.screen_code` (each keeps its constants
    in registers; one loop of everything spills them). ``mx`` .. ``pe``: float32 work
    arrays of at least ``size`` values.
    """
    lon, lat = lon[:size], lat[:size]  # views: indices provably in range
    energy32, bits = energy32[:size], bits[:size]
    mx, my, mz, px, py = mx[:size], my[:size], mz[:size], px[:size], py[:size]
    status, pe = status[:size], pe[:size]
    for j in range(size):
        mx[j], my[j], mz[j], status[j] = _screen_native(lon[j], lat[j], q)
    if tan:
        for j in range(size):
            px[j], py[j], status[j] = _screen_project(mx[j], my[j], mz[j], status[j], q, True)
    else:
        for j in range(size):
            px[j], py[j], status[j] = _screen_project(mx[j], my[j], mz[j], status[j], q, False)
    for j in range(size):
        pe[j] = _energy_pixel(energy32[j], bits[j], q)
    for j in range(size):
        local[j] = _screen_bins(px[j], py[j], status[j], pe[j], energy32[j], q)


_screen = cpu(_screen_source)  # inlined: the kernel's error model (vectorised division)


# compiled as a function of its own (not inlined into the prange loop below, whose
# body numba compiles without ``error_model="numpy"``, which vectorisation needs)
bin_block = cpu_kernel(_bin_block_source, error_model="numpy")


def _bin_blocks_source(events, geometry, private, to_hist, outputs, counters):
    """Bin events block by block (``counters.shape[0]`` blocks), thread t into ``private[t]``.

    The records as :func:`bin_block`'s. Blocks are handed to the threads dynamically
    (``numba.parallel_chunksize(1)`` at the call), so a thread descheduled on a shared
    machine does not hold the others up. Without ``to_hist`` the blocks write codes
    and ``private`` is not touched.
    """
    # numba's prange lowering rejects these records as variables of the loop body
    # (a TypeError on the UniTuple ``q`` inside one): unpacked here, packed per block
    lon, lat, energy, energy32, bits = events
    q, p, scaled_edges = geometry
    keep_codes, codes_out, amb_out = outputs
    n = lon.shape[0]
    n_blocks = counters.shape[0]
    per_block = (n + n_blocks - 1) // n_blocks
    for block in numba.prange(n_blocks):
        start = block * per_block
        stop = min(n, start + per_block)
        hist = private[numba.get_thread_id() if to_hist else 0]
        bin_block(
            (lon, lat, energy, energy32, bits),
            (q, p, scaled_edges),
            hist,
            to_hist,
            start,
            stop,
            (keep_codes, codes_out, amb_out),
            counters[block],
        )


bin_blocks_parallel = cpu_kernel(_bin_blocks_source, parallel=True)


def _merge_source(cube, private):
    """``cube += private.sum(axis=0)``, leaving ``private`` zeroed for the next call."""
    n = cube.shape[0]
    n_chunks = (n + 65535) // 65536
    for c in numba.prange(n_chunks):
        for b in range(private.shape[0]):
            for i in range(c * 65536, min(n, (c + 1) * 65536)):
                cube[i] += private[b, i]
                private[b, i] = 0.0


merge = cpu_kernel(_merge_source, parallel=True)


def _scatter_blocks_source(cube, codes, starts, counts):
    """``cube[codes[s : s + k]] += 1`` for every block's start ``s`` and count ``k``."""
    for block in range(starts.shape[0]):
        for i in range(starts[block], starts[block] + counts[block]):
            cube[codes[i]] += 1.0


scatter_blocks = cpu_kernel(_scatter_blocks_source)
