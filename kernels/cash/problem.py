"""A masked, flattened Cash likelihood problem living on one backend.

The predicted counts are linear in ``K`` free norms::

    mu = fixed + sum_k norms[k] * templates[k]

The bins are classified once (:mod:`rtafast_kernels.prepare`): bins no template
touches are summed once; bins with ``n = 0`` contribute ``mu``, which is linear
in the norms and kept as sums; only bins with counts under a template are kept on
the backend and visited by each iteration. The result is the same statistic as
summing every bin (gammapy's ``cash_sum``): when a norm combination would push
the prediction of an empty bin to the truncation value, the exact sum is used.
"""

import numpy as np

from ..registry import resolve_backend
from .element import TRUNCATION_VALUE

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
        counts = np.ascontiguousarray(counts, dtype=np.float64).ravel()
        fixed = np.ascontiguousarray(fixed, dtype=np.float64).ravel()
        templates = np.ascontiguousarray(np.atleast_2d(templates), dtype=np.float64)
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

        self._host = (counts, fixed, templates)
        self.n_bins = counts.size
        self.n_norms = templates.shape[0]
        bins = self.backend.prepare(counts, fixed, templates)
        self.n_active = bins.n_active
        self.n_counted = bins.counted_index.size
        self.constant_stat = bins.constant_stat
        self.empty_fixed_sum = bins.empty_fixed_sum
        self.empty_template_sums = bins.empty_template_sums
        self.template_sums = bins.template_sums
        self.counts_sum = bins.counts_sum
        self.fixed_sum = bins.fixed_sum
        self.lower_limits = bins.lower_limits
        # Bounds of the empty bins' inputs: a cheap lower bound of their predictions.
        self._empty_bounds = (
            bins.empty_fixed_min,
            bins.empty_template_min,
            bins.empty_template_max,
        )

        index = bins.counted_index
        self.counts = self.backend.asarray(counts[index])
        self.fixed = self.backend.asarray(fixed[index])
        self.templates = self.backend.asarray(templates[:, index])
        self._empty_index = None
        self.n_evaluations = 0

    def subproblem(self, keep):
        """The same bins with only the templates ``keep`` free (the others at zero)."""
        keep = list(keep)
        counts, fixed, templates = self._host
        return CashProblem(counts, fixed, templates[keep], backend=self.backend)

    def _linear_is_exact(self, norms):
        """True when every empty bin's prediction is above the truncation value.

        First a bound from the per-template minima and maxima over the empty bins
        (no pass over the bins); only if it fails, the exact check on the host.
        """
        fixed_min, template_min, template_max = self._empty_bounds
        if not np.isfinite(fixed_min):
            return True  # no empty bins
        bound = fixed_min + np.sum(np.where(norms >= 0, norms * template_min, norms * template_max))
        if bound > TRUNCATION_VALUE:
            return True
        counts, fixed, templates = self._host
        if self._empty_index is None:
            active = (templates != 0).any(axis=0)
            self._empty_index = np.flatnonzero(active & (counts == 0))
        mu = fixed[self._empty_index] + norms @ templates[:, self._empty_index]
        return bool((mu > TRUNCATION_VALUE).all())

    def _empty_bins_exact(self, norms):
        """Exact statistic and gradient of the empty bins (truncation included)."""
        counts, fixed, templates = self._host
        empty_templates = templates[:, self._empty_index]
        mu = fixed[self._empty_index] + norms @ empty_templates
        live = mu > TRUNCATION_VALUE
        stat = 2.0 * np.where(live, mu, TRUNCATION_VALUE).sum()
        grad = 2.0 * (empty_templates * live).sum(axis=1)
        return stat, grad

    def reduce(self, norms, need_stat=True):
        """Statistic, gradient and Hessian at ``norms``.

        One pass over the counted bins on the backend; the rest is closed-form.

        Returns
        -------
        stat : float
            Total Cash statistic of all bins (NaN when ``need_stat`` is False).
        grad : ndarray, shape (K,)
        hess : ndarray, shape (K, K)
        """
        self.n_evaluations += 1
        norms = np.atleast_1d(np.asarray(norms, dtype=np.float64))
        if self.n_counted:
            stat, grad, hess = self.backend.cash_reduce(
                self.counts, self.fixed, self.templates, norms, need_stat
            )
        else:
            stat, grad, hess = 0.0, np.zeros(self.n_norms), np.zeros((self.n_norms,) * 2)
        if self._linear_is_exact(norms):
            empty_stat = 2.0 * (self.empty_fixed_sum + norms @ self.empty_template_sums)
            empty_grad = 2.0 * self.empty_template_sums
        else:
            empty_stat, empty_grad = self._empty_bins_exact(norms)
        return stat + empty_stat + self.constant_stat, grad + empty_grad, hess

    def stat(self, norms):
        """Total Cash statistic at ``norms``."""
        return self.reduce(norms, need_stat=True)[0]
