"""CPU backend: the element math compiled with numba, parallel over cores.

Reductions are split into a fixed number of chunks (independent of the thread
count) so results are reproducible whatever ``NUMBA_NUM_THREADS`` is.
"""

import numba
import numpy as np

from . import element
from ._host import HostArrays
from .binning import bin_events_numba
from .jit import cpu, cpu_kernel
from .prepare import prepare_numba
from .selection import select_numba

__all__ = ["NumbaBackend"]

_cash_term = cpu(element.cash_term)
_cash_dmu = cpu(element.cash_dmu)
_cash_d2mu = cpu(element.cash_d2mu)

#: Bins per reduction chunk; the chunk partition is fixed so sums are reproducible.
CHUNK = 4096
#: Below this many bins the serial twin of a kernel is used: waking the thread pool
#: costs more than the loop (the partition into chunks, hence the result, is the same).
PARALLEL_THRESHOLD = 4 * CHUNK


def _cash_sum_source(counts, mu):
    n = counts.shape[0]
    nchunks = (n + CHUNK - 1) // CHUNK
    partial = np.zeros(nchunks)
    for c in numba.prange(nchunks):
        acc = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            acc += _cash_term(counts[i], mu[i])
        partial[c] = acc
    return 2.0 * partial.sum()


def _cash_reduce_source(counts, fixed, templates, norms, need_stat, out):
    n = counts.shape[0]
    k = templates.shape[0]
    width = 1 + k + k * k
    nchunks = (n + CHUNK - 1) // CHUNK
    partial = np.zeros((nchunks, width))
    for c in numba.prange(nchunks):
        acc = np.zeros(width)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            mu = fixed[i]
            for a in range(k):
                mu += norms[a] * templates[a, i]
            if need_stat:
                acc[0] += _cash_term(counts[i], mu)
            w1 = _cash_dmu(counts[i], mu)
            w2 = _cash_d2mu(counts[i], mu)
            for a in range(k):
                sa = templates[a, i]
                acc[1 + a] += sa * w1
                for b in range(k):
                    acc[1 + k + a * k + b] += sa * templates[b, i] * w2
        partial[c, :] = acc
    for j in range(width):
        out[j] = 2.0 * partial[:, j].sum()


# One source, two compilations: parallel over chunks, and serial for small inputs.
_cash_sum_parallel = cpu_kernel(_cash_sum_source, parallel=True)
_cash_sum_serial = cpu_kernel(_cash_sum_source)
_cash_reduce_parallel = cpu_kernel(_cash_reduce_source, parallel=True)
_cash_reduce_serial = cpu_kernel(_cash_reduce_source)


def _scatter_add_source(cube, codes, weight):
    for i in range(codes.shape[0]):
        cube[codes[i]] += weight


_scatter_add = cpu_kernel(_scatter_add_source)


class NumbaBackend(HostArrays):
    """numba ``njit(parallel=True)`` implementation of the reductions."""

    name = "numba"
    #: Events per ``bin_events`` call (larger chunks measured slower: 10^7 events took
    #: 59 ms in 2^23-event chunks, 40 ms in 2^20-event ones).
    bin_chunk_events = 1 << 20

    def device_name(self):
        """Return a human-readable description of where this backend computes."""
        from .device import cpu_description

        return f"{cpu_description()}, {numba.get_num_threads()} numba threads"

    def prepare(self, counts, fixed, templates):
        """Classify the bins of a Cash problem (with one parallel numba pass)."""
        return prepare_numba(counts, fixed, templates)

    def cash_sum(self, counts, mu):
        """Cash statistic ``2 * sum(mu - n ln mu)`` of 1-d arrays (gammapy semantics)."""
        kernel = _cash_sum_parallel if counts.shape[0] > PARALLEL_THRESHOLD else _cash_sum_serial
        return float(kernel(counts, mu))

    def cash_reduce(self, counts, fixed, templates, norms, need_stat):
        """Cash statistic, gradient and Hessian; see ``NumpyBackend.cash_reduce``."""
        k = templates.shape[0]
        out = np.empty(1 + k + k * k)
        big = counts.shape[0] > PARALLEL_THRESHOLD
        kernel = _cash_reduce_parallel if big else _cash_reduce_serial
        kernel(counts, fixed, templates, np.asarray(norms, np.float64), need_stat, out)
        stat = out[0] if need_stat else np.nan
        return stat, out[1 : 1 + k].copy(), out[1 + k :].reshape(k, k).copy()

    def bin_events(self, lon, lat, energy, params, scaled_edges, cube, keep_codes=False):
        """Bin events into ``cube`` in place; return a ``BinOutcome`` (see the numpy backend)."""
        return bin_events_numba(lon, lat, energy, params, scaled_edges, cube, keep_codes)

    def scatter_add(self, cube, codes, weight):
        """``cube[codes] += weight`` with repeated codes accumulated."""
        _scatter_add(cube, codes, float(weight))

    def select_events(self, time, energy, ra, dec, params, intervals):
        """Selection code of each event: 1 selected, 0 rejected, 2 ambiguous."""
        return select_numba(time, energy, ra, dec, params, intervals)

    def ts_scan(self, inputs):
        """TS scan of :class:`rtafast_kernels.tsmap_numpy.TSScanInputs` (numba, parallel).

        Returns a host array ``(N_OUTPUTS, npix)``; see :mod:`rtafast_kernels.tsmap_element`.
        """
        from .tsmap_numba import ts_scan_numba

        return ts_scan_numba(inputs)
