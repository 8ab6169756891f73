"""Cash family, NumPy reference: vectorised twins of :mod:`rtafast_kernels.cash.element`."""

import numpy as np

from .element import TRUNCATION_VALUE
from .prepare import prepare_numpy

__all__ = ["cash_sum", "cash_reduce", "prepare"]


def prepare(backend, counts, fixed, templates):
    """Operation ``prepare`` (numpy): classify the bins of a Cash problem (vectorised)."""
    return prepare_numpy(counts, fixed, templates)


def cash_sum(backend, counts, mu):
    """Operation ``cash_sum``: ``2 * sum(mu - n ln mu)`` of 1-d arrays (gammapy semantics)."""
    truncated = mu <= TRUNCATION_VALUE
    mu = np.where(truncated, TRUNCATION_VALUE, mu)
    log_term = np.where(counts > 0, counts * np.log(mu), 0.0)
    return float(2.0 * np.sum(mu - log_term))


def cash_reduce(backend, counts, fixed, templates, norms, need_stat):
    """Operation ``cash_reduce``: Cash statistic, gradient and Hessian w.r.t. linear norms.

    Parameters
    ----------
    counts : ndarray, shape (N,)
        Observed counts.
    fixed : ndarray, shape (N,)
        Predicted counts of the components whose norm is fixed.
    templates : ndarray, shape (K, N)
        Predicted counts of each free component at norm 1.
    norms : ndarray, shape (K,)
        Current norms; ``mu = fixed + norms @ templates``.
    need_stat : bool
        Compute the statistic too (it needs a log per bin); NaN otherwise.

    Returns
    -------
    stat : float
        ``2 * sum(mu - n ln mu)`` or NaN.
    grad : ndarray, shape (K,)
        Derivative of the statistic with respect to each norm.
    hess : ndarray, shape (K, K)
        Second derivatives.
    """
    norms = np.asarray(norms, dtype=np.float64)
    mu = fixed + norms @ templates
    live = mu > TRUNCATION_VALUE
    safe_mu = np.where(live, mu, 1.0)
    dmu = np.where(live, 1.0 - counts / safe_mu, 0.0)
    d2mu = np.where(live, counts / (safe_mu * safe_mu), 0.0)
    grad = 2.0 * (templates @ dmu)
    hess = 2.0 * ((templates * d2mu) @ templates.T)
    stat = cash_sum(backend, counts, mu) if need_stat else np.nan
    return stat, grad, hess
