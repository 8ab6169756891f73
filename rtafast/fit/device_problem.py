"""A Cash problem whose bins are classified where its arrays are (the GPU for "cuda").

`rtafast_kernels.CashProblem` takes host arrays: it classifies the bins on the host
(``backend.prepare``) and copies the counted ones to the backend. A stream window's
fit has its counts, fixed prediction and templates on the backend already
(:mod:`rtafast.fit.window`); :class:`DeviceCashProblem` classifies them there with the
backend's array module -- the same classes and sums as
:func:`rtafast_kernels.cash.prepare.prepare_numpy` -- and brings only the sums to the
host (one small copy). The iterations are `CashProblem`'s own (``backend.cash_reduce``
on the counted bins). The rare exact sums over the empty bins (a norm near the
truncation value) and sub-problems of several norms copy the arrays when they need
them.
"""

import numpy as np

from rtafast_kernels import CashProblem, is_host_array
from rtafast_kernels.tsmap.inputs import cash_half

__all__ = ["DeviceCashProblem", "HostCashProblem", "cash_problem"]


def cash_problem(counts, fixed, templates, backend):
    """A Cash problem of arrays on ``backend``: `CashProblem` for host arrays (it copies
    what it needs to the backend), :class:`DeviceCashProblem` for device arrays.

    Parameters
    ----------
    counts, fixed : array, shape (N,)
    templates : array, shape (K, N)
    backend : backend object
    """
    if is_host_array(counts):
        return HostCashProblem(counts, fixed, templates, backend=backend)
    return DeviceCashProblem(counts, fixed, templates, backend)


class HostCashProblem(CashProblem):
    """`rtafast_kernels.CashProblem` (host arrays) with ``counts_total``, the sum of all
    counts (float), as :class:`DeviceCashProblem` has it."""

    def __init__(self, counts, fixed, templates, backend=None):
        super().__init__(counts, fixed, templates, backend=backend)
        self.counts_total = float(np.sum(counts))


class DeviceCashProblem(CashProblem):
    """`rtafast_kernels.CashProblem` of backend arrays, classified on the backend.

    Parameters
    ----------
    counts, fixed : backend array, shape (N,), float64
        Observed counts (whole numbers >= 0, finite) and fixed prediction (finite).
    templates : backend array, shape (K, N), float64
        Finite.
    backend : backend object

    Attributes
    ----------
    counts_total : float
        Sum of all counts (``counts_sum`` is over the bins a template touches).

    Raises
    ------
    ValueError
        Without bins.
    """

    def __init__(self, counts, fixed, templates, backend):
        self.backend = backend
        xp = backend.xp
        templates = templates.reshape(-1, counts.shape[0])
        if counts.shape[0] == 0:
            raise ValueError("the Cash problem has no bins (empty mask?)")
        self._device = (counts, fixed, templates)
        self._host_copies = None
        k = templates.shape[0]
        active = (templates != 0).any(axis=0)
        counted = active & (counts > 0)
        empty = active & ~counted
        positive = templates > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = xp.where(positive, -fixed / xp.where(positive, templates, 1.0), -np.inf)
        constant = xp.where(active, 0.0, cash_half(counts, fixed, xp))
        scalars = [
            2.0 * constant.sum(),
            xp.where(empty, fixed, 0.0).sum(),
            xp.where(active, counts, 0.0).sum(),
            xp.where(active, fixed, 0.0).sum(),
            active.sum(),
            xp.where(empty, fixed, np.inf).min(),
            counts.sum(),
        ]
        per_template = [
            xp.where(empty, templates, 0.0).sum(axis=1),
            xp.where(active, templates, 0.0).sum(axis=1),
            ratio.max(axis=1),
            xp.where(empty, templates, np.inf).min(axis=1),
            xp.where(empty, templates, -np.inf).max(axis=1),
        ]
        values = xp.concatenate(
            [xp.stack([xp.asarray(v, dtype=np.float64) for v in scalars])]
            + [v.astype(np.float64) for v in per_template]
        )
        host = backend.to_numpy(values)  # the sums: one small copy
        self.constant_stat = float(host[0])
        self.empty_fixed_sum = float(host[1])
        self.counts_sum = float(host[2])
        self.fixed_sum = float(host[3])
        self.n_active = int(host[4])
        #: Sum of all counts (float)
        self.counts_total = float(host[6])
        sums = host[7:].reshape(5, k)
        self.empty_template_sums = sums[0].copy()
        self.template_sums = sums[1].copy()
        self.lower_limits = sums[2].copy()
        self._empty_bounds = (float(host[5]), sums[3].copy(), sums[4].copy())
        self.n_bins = int(counts.shape[0])
        self.n_norms = k
        index = xp.flatnonzero(counted)
        self.n_counted = int(index.shape[0])
        self.counts = counts[index]
        self.fixed = fixed[index]
        self.templates = xp.ascontiguousarray(templates[:, index])
        self._empty_index = None
        self.n_evaluations = 0

    @property
    def _host(self):
        """Host copies of counts, fixed and templates (made on first use: only the exact
        empty-bin sums near the truncation value need them)."""
        if self._host_copies is None:
            to_numpy = self.backend.to_numpy
            self._host_copies = tuple(np.asarray(to_numpy(a)) for a in self._device)
        return self._host_copies

    def subproblem(self, keep):
        """The same bins with only the templates ``keep`` free (the others at zero)."""
        counts, fixed, templates = self._device
        return DeviceCashProblem(counts, fixed, templates[list(keep)], self.backend)
