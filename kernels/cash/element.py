"""Element math of the Cash statistic, written once in plain Python.

Every function here is scalar, side-effect free and uses only :mod:`math`, so the
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
