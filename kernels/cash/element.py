"""Element math of the Cash statistic, written once in plain Python.

Every function here is scalar and side-effect free (except :func:`add_bin_terms`, which
adds one bin's terms into a row of an accumulator array) and uses only :mod:`math`, so the
same source compiles with ``numba.njit`` for the CPU and with
``numba.cuda.jit(device=True)`` for the GPU (see :mod:`rtafast_kernels.jit`).
The NumPy backend has a vectorised twin of the same formulas
(:mod:`rtafast_kernels.cash.reference`), used as the reference in tests.

Conventions follow gammapy 2.1 (``gammapy.stats.cash_sum_jit``): the predicted
counts ``mu`` are truncated at ``TRUNCATION_VALUE``; the ``n ln mu`` term only
enters where ``n > 0``; the statistic is ``2 * sum(mu - n ln mu)``.
"""

import math

__all__ = [
    "TRUNCATION_VALUE",
    "LOG_TRUNCATION_VALUE",
    "cash_term",
    "cash_dmu",
    "cash_d2mu",
    "add_bin_terms",
]

#: Minimum predicted counts; smaller values are replaced by it (gammapy's value).
TRUNCATION_VALUE = 1e-25
#: Natural log of :data:`TRUNCATION_VALUE`.
LOG_TRUNCATION_VALUE = math.log(1e-25)


def cash_term(n, mu):
    """Half the Cash statistic of one bin, ``mu - n ln mu``, with truncation.

    Parameters
    ----------
    n : float
        Observed counts of the bin.
    mu : float
        Predicted counts of the bin.

    Returns
    -------
    float
        ``mu - n ln mu`` with ``mu`` truncated at ``TRUNCATION_VALUE`` and the
        log term only where ``n > 0``.
    """
    if mu <= TRUNCATION_VALUE:
        if n > 0.0:
            return TRUNCATION_VALUE - n * LOG_TRUNCATION_VALUE
        return TRUNCATION_VALUE
    if n > 0.0:  # the log is only needed here: most bins of a sparse cube have n = 0
        return mu - n * math.log(mu)
    return mu


def cash_dmu(n, mu):
    """Derivative of :func:`cash_term` with respect to ``mu``: ``1 - n / mu``.

    Zero where ``mu`` is truncated (the truncated statistic is flat there).
    """
    if mu <= TRUNCATION_VALUE:
        return 0.0
    if n > 0.0:
        return 1.0 - n / mu
    return 1.0


def cash_d2mu(n, mu):
    """Second derivative of :func:`cash_term` with respect to ``mu``: ``n / mu**2``.

    Zero where ``mu`` is truncated.
    """
    if mu <= TRUNCATION_VALUE or n <= 0.0:
        return 0.0
    return n / (mu * mu)


def add_bin_terms(acc, row, n, fixed, templates, i, norms, need_stat):
    """Add bin ``i``'s Cash term, gradient and Hessian terms to ``acc[row]`` (halves).

    With ``K = templates.shape[0]`` free norms and ``mu = fixed + sum_a norms[a]
    templates[a, i]``: ``acc[row, 0] += cash_term(n, mu)`` (if ``need_stat``),
    ``acc[row, 1 + a] += s_a cash_dmu``, ``acc[row, 1 + K + a K + b] += s_a s_b
    cash_d2mu``. The numba reduction calls it per chunk row, the CUDA one per thread
    row of its shared-memory block.
    """
    k = templates.shape[0]
    mu = fixed
    for a in range(k):
        mu += norms[a] * templates[a, i]
    if need_stat:
        acc[row, 0] += cash_term(n, mu)
    w1 = cash_dmu(n, mu)
    w2 = cash_d2mu(n, mu)
    for a in range(k):
        sa = templates[a, i]
        acc[row, 1 + a] += sa * w1
        for b in range(k):
            acc[row, 1 + k + a * k + b] += sa * templates[b, i] * w2
