"""rtafast: a fast gamma-ray real-time analysis core with a gammapy-compatible API.

The public API lives here; the array kernels are in :mod:`rtafast_kernels`.
Importing rtafast does not import CuPy: only resolving the ``"cuda"`` backend does.
"""

from rtafast_kernels import (
    BACKEND_NAMES,
    BackendUnavailableError,
    available_backends,
    resolve_backend,
)

from .estimators import ExcessMapEstimator, LightCurveEstimator, TSMapEstimator
from .events.binning import fill_counts
from .fit import Fit, NonLinearParameterError, RtaFitResult

__version__ = "0.1.0"

__all__ = [
    "BACKEND_NAMES",
    "BackendUnavailableError",
    "ExcessMapEstimator",
    "Fit",
    "LightCurveEstimator",
    "NonLinearParameterError",
    "RtaFitResult",
    "TSMapEstimator",
    "available_backends",
    "fill_counts",
    "resolve_backend",
    "__version__",
]
