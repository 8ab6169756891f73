"""Split a Cash problem's bins once, before the iterations (host side).

With ``mu = fixed + norms @ templates`` the bins fall in three classes:

- *inactive* (every template zero): their Cash terms never change, summed once;
- *empty* (some template non-zero, ``n = 0``): their term is ``mu`` itself, linear
  in the norms, so only the sums of ``fixed`` and of each template are kept;
- *counted* (some template non-zero, ``n > 0``): the only bins the iterations visit.

Counts cubes of real-time analysis are sparse (a few thousand events in ~10^5
bins), so the iterations touch a few per cent of the bins. The linear shortcut
for empty bins is exact while their ``mu`` stays above the truncation value,
which :class:`~rtafast_kernels.CashProblem` checks.

:func:`prepare_numpy` is the reference; :func:`prepare_numba` does the same in
one parallel pass. Both return a :class:`PreparedBins`.
"""

from dataclasses import dataclass

import numba
import numpy as np

from ..jit import cpu, cpu_kernel
from ..launch import CHUNK
from . import element

__all__ = ["PreparedBins", "prepare_numpy", "prepare_numba"]

_cash_term = cpu(element.cash_term)


@dataclass
class PreparedBins:
    """The bin classes of a Cash problem (all host NumPy values)."""

    counted_index: np.ndarray  # indices of counted bins
    constant_stat: float  # 2 * sum of cash terms of inactive bins
    empty_fixed_sum: float  # sum of fixed over empty bins
    empty_template_sums: np.ndarray  # (K,) sum of each template over empty bins
    template_sums: np.ndarray  # (K,) over active bins
    counts_sum: float  # over active bins
    fixed_sum: float  # over active bins
    lower_limits: np.ndarray  # (K,) -min(fixed / template) over template > 0
    n_active: int
    empty_fixed_min: float  # min of fixed over empty bins (inf if none)
    empty_template_min: np.ndarray  # (K,) min of each template over empty bins
    empty_template_max: np.ndarray  # (K,) max of each template over empty bins


def prepare_numpy(counts, fixed, templates):
    """Classify the bins with vectorised NumPy (the reference)."""
    active = (templates != 0).any(axis=0)
    counted = active & (counts > 0)
    empty = active & ~counted
    inactive = ~active
    mu = np.where(
        fixed[inactive] <= element.TRUNCATION_VALUE, element.TRUNCATION_VALUE, fixed[inactive]
    )
    n_inactive = counts[inactive]
    log_term = np.where(n_inactive > 0, n_inactive * np.log(mu), 0.0)
    k = templates.shape[0]
    any_empty = bool(empty.any())
    lower = np.full(k, -np.inf)
    for j in range(k):
        positive = templates[j] > 0
        if positive.any():
            lower[j] = -np.min(fixed[positive] / templates[j][positive])
    return PreparedBins(
        counted_index=np.flatnonzero(counted),
        constant_stat=float(2.0 * np.sum(mu - log_term)),
        empty_fixed_sum=float(fixed[empty].sum()),
        empty_template_sums=templates[:, empty].sum(axis=1),
        template_sums=templates[:, active].sum(axis=1),
        counts_sum=float(counts[active].sum()),
        fixed_sum=float(fixed[active].sum()),
        lower_limits=lower,
        n_active=int(active.sum()),
        empty_fixed_min=float(fixed[empty].min()) if any_empty else np.inf,
        empty_template_min=templates[:, empty].min(axis=1) if any_empty else np.full(k, np.inf),
        empty_template_max=templates[:, empty].max(axis=1) if any_empty else np.full(k, -np.inf),
    )


def _classify_source(
    counts, fixed, templates, scalars, empty_t, active_t, lower, fixed_min, t_min, t_max
):
    """Per-chunk sums and extrema of the bins (arrays filled in place, chunk by chunk).

    ``scalars`` per chunk: constant stat, empty fixed, counts, fixed, n_active, n_counted.
    """
    n = counts.shape[0]
    k = templates.shape[0]
    nchunks = scalars.shape[0]
    for c in numba.prange(nchunks):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            is_active = False
            for a in range(k):
                if templates[a, i] != 0.0:
                    is_active = True
            if not is_active:
                scalars[c, 0] += _cash_term(counts[i], fixed[i])
                continue
            scalars[c, 2] += counts[i]
            scalars[c, 3] += fixed[i]
            scalars[c, 4] += 1.0
            for a in range(k):
                s = templates[a, i]
                active_t[c, a] += s
                if s > 0.0 and -fixed[i] / s > lower[c, a]:
                    lower[c, a] = -fixed[i] / s
            if counts[i] > 0.0:
                scalars[c, 5] += 1.0
            else:
                scalars[c, 1] += fixed[i]
                fixed_min[c] = min(fixed_min[c], fixed[i])
                for a in range(k):
                    empty_t[c, a] += templates[a, i]
                    t_min[c, a] = min(t_min[c, a], templates[a, i])
                    t_max[c, a] = max(t_max[c, a], templates[a, i])


def _gather_counted_source(counts, templates, offsets, index):
    """Indices of the counted active bins, chunk ``c`` from ``offsets[c]`` on."""
    n = counts.shape[0]
    k = templates.shape[0]
    for c in numba.prange(offsets.shape[0] - 1):
        position = offsets[c]
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            if counts[i] > 0.0:
                for a in range(k):
                    if templates[a, i] != 0.0:
                        index[position] = i
                        position += 1
                        break


# two single-loop kernels, the allocations and the reductions over chunks in NumPy:
# numba compiles each array expression of a parallel function as a loop of its own
_classify = cpu_kernel(_classify_source, parallel=True)
_gather_counted = cpu_kernel(_gather_counted_source, parallel=True)


def prepare_numba(counts, fixed, templates):
    """Classify the bins in one parallel numba pass (same result as :func:`prepare_numpy`)."""
    k = templates.shape[0]
    nchunks = (counts.shape[0] + CHUNK - 1) // CHUNK
    scalars = np.zeros((nchunks, 6))
    empty_t = np.zeros((nchunks, k))
    active_t = np.zeros((nchunks, k))
    lower = np.full((nchunks, k), -np.inf)
    fixed_min = np.full(nchunks, np.inf)
    t_min = np.full((nchunks, k), np.inf)
    t_max = np.full((nchunks, k), -np.inf)
    _classify(counts, fixed, templates, scalars, empty_t, active_t, lower, fixed_min, t_min, t_max)
    offsets = np.zeros(nchunks + 1, dtype=np.int64)
    np.cumsum(scalars[:, 5].astype(np.int64), out=offsets[1:])
    index = np.empty(offsets[-1], dtype=np.int64)
    _gather_counted(counts, templates, offsets, index)
    lower = np.max(lower, axis=0, initial=-np.inf)
    bounds = (
        float(np.min(fixed_min, initial=np.inf)),
        np.min(t_min, axis=0, initial=np.inf),
        np.max(t_max, axis=0, initial=-np.inf),
    )
    # along axis 0 NumPy adds the chunks' rows in order, as the kernel did
    scalars, empty_t, active_t = (a.sum(axis=0) for a in (scalars, empty_t, active_t))
    return PreparedBins(
        counted_index=index,
        constant_stat=float(2.0 * scalars[0]),
        empty_fixed_sum=float(scalars[1]),
        empty_template_sums=empty_t,
        template_sums=active_t,
        counts_sum=float(scalars[2]),
        fixed_sum=float(scalars[3]),
        lower_limits=lower,
        n_active=int(scalars[4]),
        empty_fixed_min=float(bounds[0]),
        empty_template_min=bounds[1],
        empty_template_max=bounds[2],
    )
