"""A masked, flattened Cash likelihood problem living on one backend.

The predicted counts are linear in ``K`` free norms::

    mu = fixed + sum_k norms[k] * templates[k]

Bins where every template is zero do not depend on the norms: their Cash terms
are summed once (``constant_stat``) and only the other bins (the *active* bins)
are kept on the backend for the iterations.
"""

import numpy as np

from .backends import resolve_backend

__all__ = ["CashProblem"]


def _check_finite(name, array):
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite value(s) (first at index {first}); "
            "the Cash statistic needs finite inputs"
        )


class CashProblem:
    """Counts, fixed prediction and norm-1 templates of the free components.

    Parameters
    ----------
    counts : array_like, shape (N,)
        Observed counts of the fitted (masked) bins.
    fixed : array_like, shape (N,)
        Predicted counts of the components whose parameters are all fixed.
    templates : array_like, shape (K, N) or (N,)
        Predicted counts of each free component at norm 1.
    backend : str or backend object, optional
        See :func:`rtafast_kernels.resolve_backend`.

    Raises
    ------
    ValueError
        On shape mismatches, non-finite values, negative counts or no bins.
    """

    def __init__(self, counts, fixed, templates, backend=None):
        self.backend = resolve_backend(backend)
        counts = np.asarray(counts, dtype=np.float64).ravel()
        fixed = np.asarray(fixed, dtype=np.float64).ravel()
        templates = np.atleast_2d(np.asarray(templates, dtype=np.float64))
        if counts.size == 0:
            raise ValueError("the Cash problem has no bins (empty mask?)")
        if fixed.shape != counts.shape or templates.shape[1:] != counts.shape:
            raise ValueError(
                f"shape mismatch: counts {counts.shape}, fixed {fixed.shape}, "
                f"templates {templates.shape} (expected (K, {counts.size}))"
            )
        for name, array in (("counts", counts), ("fixed", fixed), ("templates", templates)):
            _check_finite(name, array)
        if (counts < 0).any():
            raise ValueError(f"counts has {int((counts < 0).sum())} negative value(s)")

        self.n_bins = counts.size
        self.n_norms = templates.shape[0]
        active = (templates != 0).any(axis=0)
        self.n_active = int(active.sum())
        self.template_sums = templates[:, active].sum(axis=1)
        self.counts_sum = float(counts[active].sum())

        xp_asarray = self.backend.asarray
        inactive = ~active
        self.constant_stat = 0.0
        if inactive.any():
            self.constant_stat = self.backend.cash_sum(
                xp_asarray(counts[inactive]), xp_asarray(fixed[inactive])
            )
        self.counts = xp_asarray(counts[active])
        self.fixed = xp_asarray(fixed[active])
        self.templates = xp_asarray(templates[:, active])

        # Lowest norm of a single component keeping every bin's prediction >= 0
        # (gammapy's convention for negative norms: -min(b / s) over s > 0).
        self.lower_limits = np.empty(self.n_norms)
        for k in range(self.n_norms):
            positive = templates[k] > 0
            if positive.any():
                self.lower_limits[k] = -np.min(fixed[positive] / templates[k][positive])
            else:
                self.lower_limits[k] = -np.inf
        self.n_evaluations = 0

    def subproblem(self, keep):
        """The same bins with only the templates ``keep`` free (the others at zero).

        Shares this problem's backend arrays for counts and fixed prediction.
        """
        keep = list(keep)
        sub = object.__new__(CashProblem)
        sub.__dict__.update(self.__dict__)
        sub.n_norms = len(keep)
        sub.templates = self.templates[keep]
        sub.template_sums = self.template_sums[keep]
        sub.lower_limits = self.lower_limits[keep]
        sub.n_evaluations = 0
        return sub

    def reduce(self, norms, need_stat=True):
        """Statistic, gradient and Hessian at ``norms`` (one pass over the active bins).

        Returns
        -------
        stat : float
            Total Cash statistic of all bins (NaN when ``need_stat`` is False).
        grad : ndarray, shape (K,)
        hess : ndarray, shape (K, K)
        """
        self.n_evaluations += 1
        stat, grad, hess = self.backend.cash_reduce(
            self.counts, self.fixed, self.templates, np.atleast_1d(norms), need_stat
        )
        return stat + self.constant_stat, grad, hess

    def stat(self, norms):
        """Total Cash statistic at ``norms``."""
        return self.reduce(norms, need_stat=True)[0]
