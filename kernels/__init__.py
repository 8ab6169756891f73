"""rtafast's array layer: NumPy, numba and CUDA kernels (no astropy, no gammapy).

Importable on its own as ``rtafast_kernels``. Inputs and outputs are plain
arrays; the astronomy layer (:mod:`rtafast`) turns gammapy objects into them.
"""

from . import _openmp  # noqa: F401  (first: sets OpenMP's spin count before numba's pool)
from .cash.element import TRUNCATION_VALUE
from .cash.normfit import NormFitResult, fit_norm, fit_norms
from .cash.problem import CashProblem
from .devices import is_host_array
from .registry import (
    BACKEND_NAMES,
    ENV_VARIABLE,
    BackendUnavailableError,
    auto_backend_name,
    available_backends,
    default_backend_name,
    environment_backend_name,
    resolve_backend,
)
from .trials import TrialFits, fit_norm_rows

__all__ = [
    "BACKEND_NAMES",
    "ENV_VARIABLE",
    "TRUNCATION_VALUE",
    "BackendUnavailableError",
    "CashProblem",
    "NormFitResult",
    "TrialFits",
    "auto_backend_name",
    "available_backends",
    "cash_sum",
    "default_backend_name",
    "environment_backend_name",
    "fit_norm",
    "fit_norm_rows",
    "fit_norms",
    "is_host_array",
    "resolve_backend",
]


def cash_sum(counts, mu, backend=None):
    """Cash statistic ``2 * sum(mu - n ln mu)`` with gammapy's conventions.

    Parameters
    ----------
    counts, mu : array_like
        Observed and predicted counts (same shape; flattened).
    backend : str, optional
        See :func:`resolve_backend`.

    Returns
    -------
    float
    """
    import numpy as np

    impl = resolve_backend(backend)
    counts = np.asarray(counts, dtype=np.float64).ravel()
    mu = np.asarray(mu, dtype=np.float64).ravel()
    if counts.shape != mu.shape:
        raise ValueError(f"counts {counts.shape} and mu {mu.shape} differ in size")
    return impl.cash_sum(impl.asarray(counts), impl.asarray(mu))
