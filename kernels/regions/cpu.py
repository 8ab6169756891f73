"""On/off counting compiled with numba: serial for a bunch, parallel blocks for big lists."""

import numba
import numpy as np

from ..binning.fast_element import sin_cosm1_small
from ..jit import cpu, cpu_functions, cpu_kernel, cpu_piece
from ..launch import EVENT_PARALLEL_THRESHOLD, free_threads, threads
from . import element as el
from . import exact as ex
from . import plane as pl

__all__ = ["count_in_circles", "count_numba"]

_sincos = cpu(sin_cosm1_small)
_AMBIGUOUS = el.AMBIGUOUS
_INVALID = el.INVALID
_S_ON, _S_SIN0, _S_COS0, _S_HA, _S_HB = pl.S_ON, pl.S_SIN0, pl.S_COS0, pl.S_HA, pl.S_HB
_HEADER, _FIELDS = pl.HEADER_SIZE, pl.FIELDS
_ONE32, _ZERO32, _MINUS32 = np.float32(1.0), np.float32(0.0), np.float32(-1.0)
_D2R32 = np.float32(np.pi / 180.0)
_OUTSIDE = el.OUTSIDE
#: Plane coordinate (rad) of the events outside the box: far from every circle.
_FAR32 = np.float32(4.0)
#: ``n_near`` of the events the exact path must decide (invalid, or no screen).
_FORCE32 = np.float32(1e6)
#: Events per chunk of the screen.
CHUNK = 512
#: Events from which a call runs in parallel, one block per numba thread. Each block
#: keeps its own small partial counts (regions x energy bins: nothing large to merge),
#: so two threads pay off from a real-time bunch (10^4 events, 13 circles, 2-core VM:
#: the kernel 35-43 µs on two threads against 90 µs serially). Below
#: ``EVENT_PARALLEL_THRESHOLD`` the pool is used as it is: ``launch.free_threads``
#: reads ``/proc/loadavg``, which still counts our own pool's threads spinning after
#: the previous call's parallel region, so at this size it would say "busy" every
#: other call (and costs ~7 µs itself); longer lists use the cores free at the time.
PARALLEL_MIN_EVENTS = 8192
#: Most events per block of the parallel kernel (a bunch: one block per thread).
BLOCK_EVENTS = 65536


def _add_source(out, row, column):
    """``out[row, column] += 1`` (each block has its own counts: no atomics)."""
    out[row, column] += 1.0


#: The exact float64 path of one event (:func:`.exact.make_count_event`).
_exact = ex.make_count_event(cpu_piece, cpu_functions(el), cpu(_add_source))


def _plane_stage(ra, dec, energy, c0, size, consts, head, xs, ys, acc_in, n_near):
    """Stage 1 (vectorised): plane coordinates of events ``c0 : c0 + size``, flags."""
    ra0, ra0_hi, ra0_lo, dec0, half_turn = consts[0], consts[1], consts[2], consts[3], consts[4]
    on, sin0, cos0, sin0cos0, sin0sq, ha, hb = head
    for j in range(size):
        i = c0 + j
        r = ra[i]
        d = dec[i]
        e = energy[i]
        finite = (r - r == 0) & (d - d == 0) & (e - e == 0)
        a = r - ra0
        a = (r - ra0_hi) if a >= half_turn else a
        a = (r - ra0_lo) if a < -half_turn else a
        af = np.float32(a) * _D2R32
        bf = np.float32(d - dec0) * _D2R32
        in_box = (abs(af) <= ha) & (abs(bf) <= hb)
        af = af if in_box else _ZERO32
        bf = bf if in_box else _ZERO32
        sa, cma = _sincos(af)
        sb, cmb = _sincos(bf)
        cos_d = cos0 + (cos0 * cmb - sin0 * sb)
        den = (_ONE32 + cmb) + cos0 * cos_d * cma
        num_x = cos_d * sa
        num_y = sb * (_ONE32 + sin0sq * cma) - sin0cos0 * (_ONE32 + cmb) * cma
        xs[j] = num_x / den if in_box else _FAR32
        ys[j] = num_y / den if in_box else _FAR32
        n_near[j] = _ZERO32 if (finite & on) else _FORCE32
        acc_in[j] = _ZERO32


_plane = cpu(_plane_stage)


def _circle_stage(size, screen, n_circles, xs, ys, acc_in, n_near):
    """Stage 2 (vectorised): every circle's screen for the chunk's events.

    ``acc_in``: sum over the circles the event is surely inside of ``1 + B k``
    (``B = n_circles + 1``); ``n_near``: circles whose outer radius the event is
    within. Inside a circle is within its outer radius: with ``n_near == 1`` and
    ``acc_in != 0`` the event is inside circle ``(acc_in - 1) / B`` and no other,
    and in no band.
    """
    base_b = np.float32(n_circles + 1)
    for k0 in range(0, n_circles, 4):  # four circles per pass over the events
        x0, y0, i0, o0, w0 = _circle_constants(screen, n_circles, k0, base_b)
        x1, y1, i1, o1, w1 = _circle_constants(screen, n_circles, k0 + 1, base_b)
        x2, y2, i2, o2, w2 = _circle_constants(screen, n_circles, k0 + 2, base_b)
        x3, y3, i3, o3, w3 = _circle_constants(screen, n_circles, k0 + 3, base_b)
        for j in range(size):
            x = xs[j]
            y = ys[j]
            q0 = (x - x0) * (x - x0) + (y - y0) * (y - y0)
            q1 = (x - x1) * (x - x1) + (y - y1) * (y - y1)
            q2 = (x - x2) * (x - x2) + (y - y2) * (y - y2)
            q3 = (x - x3) * (x - x3) + (y - y3) * (y - y3)
            acc_in[j] += (
                (w0 if q0 < i0 else _ZERO32)
                + (w1 if q1 < i1 else _ZERO32)
                + (w2 if q2 < i2 else _ZERO32)
                + (w3 if q3 < i3 else _ZERO32)
            )
            n_near[j] += (
                (_ONE32 if q0 <= o0 else _ZERO32)
                + (_ONE32 if q1 <= o1 else _ZERO32)
                + (_ONE32 if q2 <= o2 else _ZERO32)
                + (_ONE32 if q3 <= o3 else _ZERO32)
            )


def _circle_constants_source(screen, n_circles, k, base_b):
    """Circle ``k``'s ``X, Y, r_in^2, r_out^2`` and weight ``1 + B k`` (float32); a
    circle nobody is near beyond ``n_circles`` (``r^2 = -1``)."""
    if k >= n_circles:
        return _ZERO32, _ZERO32, _MINUS32, _MINUS32, _ZERO32
    base = _HEADER + _FIELDS * k
    return (
        np.float32(screen[base]),
        np.float32(screen[base + 1]),
        np.float32(screen[base + 2]),
        np.float32(screen[base + 3]),
        _ONE32 + base_b * np.float32(k),
    )


_circle_constants = cpu(_circle_constants_source)
_circles_screen = cpu(_circle_stage)


def _energy_stage(m, es, edges, counted):
    """Vectorised: ``counted[t]`` = number of edges ``<= es[t]``."""
    for t in range(m):
        counted[t] = 0.0
    for k in range(edges.shape[0]):
        edge = edges[k]
        for t in range(m):
            counted[t] += 1.0 if es[t] >= edge else 0.0


_energies = cpu(_energy_stage)


def _energy_bin_source(e, n_below, edges, etol):
    """``element.energy_code`` given the number of edges ``<= e`` (no search)."""
    n = edges.shape[0] - 1
    if n_below == 0:
        return _AMBIGUOUS if edges[0] - e <= etol * abs(edges[0]) else _OUTSIDE
    if n_below > n:
        return _AMBIGUOUS if e - edges[n] <= etol * abs(edges[n]) else _OUTSIDE
    lo = n_below - 1
    if e - edges[lo] <= etol * abs(edges[lo]) or edges[lo + 1] - e <= etol * abs(edges[lo + 1]):
        return _AMBIGUOUS
    return lo


_energy_bin = cpu(_energy_bin_source)


def _count_range_source(
    ra, dec, energy, circles, bounds, screen, consts, edges, etol, start, stop, out, ambiguous
):
    """Count events ``start:stop`` into ``out``; ambiguous indices from ``ambiguous[start]``.

    Chunk by chunk: the float32 screen (``plane``) in two vectorised stages; the events
    it puts in exactly one circle (and no band) are binned in energy (a vectorised
    count of the edges below, then ``energy_code``'s tests), the few left (in a band,
    invalid, in several circles) take the exact float64 path.
    """
    n_circles = circles.shape[1]
    inv_b = 1.0 / (n_circles + 1)
    head = (
        screen[_S_ON] == 1.0,
        np.float32(screen[_S_SIN0]),
        np.float32(screen[_S_COS0]),
        np.float32(screen[_S_SIN0] * screen[_S_COS0]),
        np.float32(screen[_S_SIN0] * screen[_S_SIN0]),
        np.float32(screen[_S_HA]),
        np.float32(screen[_S_HB]),
    )
    xs = np.empty(CHUNK, np.float32)
    ys = np.empty(CHUNK, np.float32)
    acc_in = np.empty(CHUNK, np.float32)
    n_near = np.empty(CHUNK, np.float32)
    picked = np.empty(CHUNK, np.int64)
    which = np.empty(CHUNK, np.int64)
    es = np.empty(CHUNK, np.float64)
    counted = np.empty(CHUNK, np.float64)
    n_ambiguous = 0
    n_invalid = 0
    for c0 in range(start, stop, CHUNK):
        size = min(stop - c0, CHUNK)
        _plane(ra, dec, energy, c0, size, consts, head, xs, ys, acc_in, n_near)
        _circles_screen(size, screen, n_circles, xs, ys, acc_in, n_near)
        m = 0
        for j in range(size):
            if n_near[j] == 0:
                continue
            i = c0 + j
            if n_near[j] == 1 and acc_in[j] != 0:  # in one circle (1 + B k), in no band
                picked[m] = i
                which[m] = int((float(acc_in[j]) - 1.0) * inv_b + 0.5)
                es[m] = float(energy[i])
                m += 1
                continue
            status = _exact(i, ra, dec, energy, circles, bounds, edges, etol, out)
            if status == _AMBIGUOUS:
                ambiguous[start + n_ambiguous] = i
            n_ambiguous += status == _AMBIGUOUS
            n_invalid += status == _INVALID
        _energies(m, es, edges, counted)
        for t in range(m):
            ebin = _energy_bin(es[t], int(counted[t]), edges, etol)
            if ebin >= 0:
                k = which[t]
                out[k, ebin] += 1.0
                if k > 0:
                    out[n_circles, ebin] += 1.0
            elif ebin == _AMBIGUOUS:
                ambiguous[start + n_ambiguous] = picked[t]
                n_ambiguous += 1
    return n_ambiguous, n_invalid


_count_range = cpu(_count_range_source)


def _blocks_source(
    ra, dec, energy, circles, bounds, screen, consts, edges, etol, block, partial, ambiguous, stats
):
    """Count block ``b`` (events ``b * block`` on, ``block`` at most) into ``partial[b]``.

    ``stats[b]``: the block's numbers of ambiguous and invalid events; its ambiguous
    indices are written from the block's first event on in ``ambiguous``. Compiled
    serial (one block: ``partial`` the caller's counts with a leading axis) and
    parallel (a block per thread).
    """
    n_blocks = partial.shape[0]
    for b in numba.prange(n_blocks):
        start = b * block
        stop = min(start + block, ra.shape[0])
        n_ambiguous, n_invalid = _count_range(
            ra,
            dec,
            energy,
            circles,
            bounds,
            screen,
            consts,
            edges,
            etol,
            start,
            stop,
            partial[b],
            ambiguous,
        )
        stats[b, 0] = n_ambiguous
        stats[b, 1] = n_invalid


# numpy error model: the divisions vectorise
_serial = cpu_kernel(_blocks_source, error_model="numpy")
_parallel = cpu_kernel(_blocks_source, parallel=True, error_model="numpy")


_CONSTANTS = {}


def _column_constants(ra, screen):
    """``[ra0, ra0 + 360, ra0 - 360, dec0, 180]`` in the RA column's dtype (an array:
    cheaper for numba's dispatcher than a tuple)."""
    ra0, dec0 = float(screen[pl.S_RA0]), float(screen[pl.S_DEC0])
    key = (ra0, dec0, ra.dtype)
    found = _CONSTANTS.get(key)
    if found is None:
        kind = ra.dtype if ra.dtype in (np.float32, np.float64) else np.float64
        found = np.array([ra0, ra0 + 360.0, ra0 - 360.0, dec0, 180.0], dtype=kind)
        if len(_CONSTANTS) > 256:
            _CONSTANTS.clear()
        _CONSTANTS[key] = found
    return found


def _threads_for(n):
    """Threads of a call with ``n`` events (see :data:`PARALLEL_MIN_EVENTS`)."""
    if n < PARALLEL_MIN_EVENTS:
        return 1
    if n < EVENT_PARALLEL_THRESHOLD:
        return numba.get_num_threads()
    return free_threads()


def count_numba(ra, dec, energy, circles, bounds, screen, edges, etol, out):
    """numba twin of :func:`~rtafast_kernels.regions.reference.count_numpy`.

    ``screen``: :func:`~rtafast_kernels.regions.plane.screen_params` of the circles.
    """
    n = ra.shape[0]
    ambiguous = np.empty(n, dtype=np.int64)
    consts = _column_constants(ra, screen)
    args = (ra, dec, energy, circles, bounds, screen, consts, edges, float(etol))
    n_threads = _threads_for(n)
    if n_threads <= 1:
        stats = np.zeros((1, 2), dtype=np.int64)
        _serial(*args, max(n, 1), out[np.newaxis], ambiguous, stats)
        found = ambiguous[: stats[0, 0]]
        return (np.sort(found) if len(found) > 1 else found.copy()), int(stats[0, 1])
    block = min(-(-n // n_threads), BLOCK_EVENTS)
    n_blocks = -(-n // block)
    partial = np.zeros((n_blocks,) + out.shape)
    stats = np.zeros((n_blocks, 2), dtype=np.int64)
    if n_threads == numba.get_num_threads():
        _parallel(*args, block, partial, ambiguous, stats)
    else:
        with threads(n_threads):
            _parallel(*args, block, partial, ambiguous, stats)
    out += partial.sum(axis=0)
    starts = np.arange(n_blocks) * block
    picked = [ambiguous[s : s + m] for s, m in zip(starts, stats[:, 0], strict=True) if m]
    found = np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
    return found, int(stats[:, 1].sum())


def count_in_circles(backend, ra, dec, energy, circles, bounds, screen, edges, etol, out):
    """Operation ``count_in_circles`` (numba): see ``reference.count_numpy``."""
    return count_numba(ra, dec, energy, circles, bounds, screen, edges, etol, out)
