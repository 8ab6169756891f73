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
one parallel numba kernel (classification and gathering of the counted bins). Both
return a :class:`PreparedBins`.

Compilation time (the first fit of a fresh install compiles this kernel): numba
compiles a ``parallel=True`` kernel several times over (the loop body as a gufunc,
its wrapper, the caller; ~0.5 s for an empty loop), and its parallel passes copy and
scan the whole IR of the body, element math inlined included. The per-bin helpers
are therefore compiled once each as functions of their own (``jit.cpu_piece``), the
kernel allocates nothing (the host passes every array) and keeps its sums in scalars:
~1.5 s of CPU time with an empty cache, against ~2.5 s for the former two kernels.
"""

from dataclasses import dataclass

import numba
import numpy as np

from ..jit import cpu_kernel, cpu_piece
from ..launch import CHUNK
from . import element

__all__ = ["PreparedBins", "prepare_numpy", "prepare_numba"]

_cash_term = cpu_piece(element.cash_term)


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


#: Columns of the per-chunk bin sums of :func:`_classify_source`.
_CONSTANT, _EMPTY_FIXED, _COUNTS, _FIXED, _N_ACTIVE, _N_COUNTED, _EMPTY_FIXED_MIN = range(7)
#: Columns of its per-chunk, per-template sums and extrema.
_ACTIVE_SUM, _LOWER, _EMPTY_SUM, _EMPTY_MIN, _EMPTY_MAX = range(5)


def _classify_source(counts, fixed, templates, sums, template_sums, index):
    """Classify the bins chunk by chunk, then gather the counted ones.

    Fills ``sums`` (nchunks, 7) and ``template_sums`` (nchunks, K, 5) (columns above)
    and writes the counted bins' indices to the start of ``index`` (N,); returns
    their number. Each chunk writes its counted bins from its own first bin on; a
    serial pass then moves them together, in order.
    """
    n = counts.shape[0]
    for c in numba.prange(sums.shape[0]):
        start = c * CHUNK
        stop = min(n, start + CHUNK)
        constant = 0.0
        empty_fixed = 0.0
        counts_sum = 0.0
        fixed_sum = 0.0
        empty_fixed_min = np.inf
        n_active = 0
        n_counted = 0
        for i in range(start, stop):
            if not _is_active(templates, i):
                constant += _cash_term(counts[i], fixed[i])
                continue
            counts_sum += counts[i]
            fixed_sum += fixed[i]
            n_active += 1
            if counts[i] > 0.0:
                index[start + n_counted] = i
                n_counted += 1
            else:
                empty_fixed += fixed[i]
                if fixed[i] < empty_fixed_min:
                    empty_fixed_min = fixed[i]
        sums[c, _CONSTANT] = constant
        sums[c, _EMPTY_FIXED] = empty_fixed
        sums[c, _COUNTS] = counts_sum
        sums[c, _FIXED] = fixed_sum
        sums[c, _N_ACTIVE] = n_active
        sums[c, _N_COUNTED] = n_counted
        sums[c, _EMPTY_FIXED_MIN] = empty_fixed_min
        for a in range(templates.shape[0]):
            _template_sums(counts, fixed, templates, a, start, stop, template_sums[c, a])
    position = 0
    for c in range(sums.shape[0]):
        for j in range(int(sums[c, _N_COUNTED])):
            index[position] = index[c * CHUNK + j]  # never ahead of its source
            position += 1
    return position


@cpu_piece
def _is_active(templates, i):
    """True when some template is non-zero in bin ``i``."""
    for a in range(templates.shape[0]):
        if templates[a, i] != 0.0:
            return True
    return False


@cpu_piece
def _template_sums(counts, fixed, templates, a, start, stop, out):
    """Sums and extrema of template ``a`` over the active bins ``start:stop`` (scalars)."""
    active_sum = 0.0
    lower = -np.inf
    empty_sum = 0.0
    empty_min = np.inf
    empty_max = -np.inf
    for i in range(start, stop):
        s = templates[a, i]
        if s == 0.0 and not _is_active(templates, i):
            continue
        active_sum += s
        if s > 0.0 and -fixed[i] / s > lower:
            lower = -fixed[i] / s
        if not counts[i] > 0.0:
            empty_sum += s
            if s < empty_min:  # plain comparisons: finite inputs, a little less to compile
                empty_min = s
            if s > empty_max:
                empty_max = s
    out[_ACTIVE_SUM] = active_sum
    out[_LOWER] = lower
    out[_EMPTY_SUM] = empty_sum
    out[_EMPTY_MIN] = empty_min
    out[_EMPTY_MAX] = empty_max


# compiled at the first call; always parallel (run once per problem, over every bin,
# and warmed by 'rtafast warmup' on any size); allocations and the sums over chunks
# stay in NumPy
_classify = cpu_kernel(_classify_source, parallel=True)


def prepare_numba(counts, fixed, templates):
    """Classify the bins in one parallel numba pass (same result as :func:`prepare_numpy`)."""
    k = templates.shape[0]
    nchunks = (counts.shape[0] + CHUNK - 1) // CHUNK
    sums = np.empty((nchunks, 7))
    template_sums = np.empty((nchunks, k, 5))
    index = np.empty(counts.shape[0], dtype=np.int64)
    n_counted = _classify(counts, fixed, templates, sums, template_sums, index)
    # along axis 0 NumPy adds the chunks' rows in order, as the kernel did
    total = sums.sum(axis=0)
    template_total = template_sums.sum(axis=0)
    return PreparedBins(
        counted_index=index[:n_counted].copy(),
        constant_stat=float(2.0 * total[_CONSTANT]),
        empty_fixed_sum=float(total[_EMPTY_FIXED]),
        empty_template_sums=template_total[:, _EMPTY_SUM].copy(),
        template_sums=template_total[:, _ACTIVE_SUM].copy(),
        counts_sum=float(total[_COUNTS]),
        fixed_sum=float(total[_FIXED]),
        lower_limits=np.max(template_sums[:, :, _LOWER], axis=0, initial=-np.inf),
        n_active=int(total[_N_ACTIVE]),
        empty_fixed_min=float(np.min(sums[:, _EMPTY_FIXED_MIN], initial=np.inf)),
        empty_template_min=np.min(template_sums[:, :, _EMPTY_MIN], axis=0, initial=np.inf),
        empty_template_max=np.max(template_sums[:, :, _EMPTY_MAX], axis=0, initial=-np.inf),
    )
