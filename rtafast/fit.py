"""Drop-in replacement of :class:`gammapy.modeling.Fit` for flux-only fits.

When every free parameter is a linear norm (see :mod:`rtafast.linear_models`),
:meth:`Fit.run` builds the templates once with gammapy's evaluators, solves the
Cash likelihood with an rtafast kernel, and writes values, errors and covariance
back into the gammapy models where gammapy's ``Fit`` puts them. Otherwise it
delegates to :class:`gammapy.modeling.Fit` (``result.backend == "gammapy"``) and
logs why.
"""

import logging

import numpy as np
from astropy.table import Table
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit
from gammapy.modeling.fit import CovarianceResult, FitResult, OptimizeResult

from rtafast_kernels import CashProblem, fit_norms, resolve_backend

from .linear_models import NonLinearParameterError, plan_linear_fit
from .psf_kernels import default_cache
from .templates import UnsupportedDatasetError, build_arrays

__all__ = ["Fit", "RtaFitResult", "NonLinearParameterError"]

log = logging.getLogger(__name__)

#: Optimizer names of gammapy's ``Fit(backend=...)``, accepted for drop-in use.
GAMMAPY_OPTIMIZERS = ("minuit", "scipy", "sherpa")


class RtaFitResult(FitResult):
    """gammapy's ``FitResult`` plus what rtafast adds.

    Attributes
    ----------
    backend : str
        ``"numpy"``, ``"numba"`` or ``"cuda"`` for the fast path, ``"gammapy"`` when
        the fit was delegated.
    ts : dict
        Test statistic ``stat(norm=0) - stat(best)`` of each fitted source (sky model
        name -> TS), the other norms held at their best values. Empty if delegated.
    fast_path : bool
        True when rtafast's kernel did the fit.
    niter : int
        Newton iterations (fast path only).
    """

    def __init__(self, backend, ts=None, niter=0, **kwargs):
        super().__init__(**kwargs)
        self._rta_backend = backend
        self.ts = dict(ts or {})
        self.niter = niter

    @property
    def backend(self):
        """Where the fit ran: an rtafast backend name or ``"gammapy"``."""
        return self._rta_backend

    @property
    def fast_path(self):
        """True if rtafast's kernel did the fit (not gammapy)."""
        return self._rta_backend != "gammapy"

    def __str__(self):
        text = super().__str__()
        text += f"\trtafast backend : {self.backend}\n"
        for name, ts in self.ts.items():
            text += f"\tTS({name}) : {ts:.2f}\n"
        return text


class Fit:
    """Flux-only Cash fit with gammapy's ``Fit`` interface.

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "cuda"} or None
        rtafast compute backend (None: ``$RTAFAST_BACKEND`` or ``"auto"``). For
        drop-in use, gammapy optimizer names (``"minuit"``, ``"scipy"``,
        ``"sherpa"``) are accepted too: they select that optimizer for delegated fits
        and the default compute backend for the fast path.
    optimize_opts, covariance_opts, confidence_opts, store_trace
        As for :class:`gammapy.modeling.Fit`; used when the fit is delegated.
    delegate : bool
        If False, raise :class:`NonLinearParameterError` instead of delegating
        when a free parameter is not a linear norm.
    rtol : float
        Convergence: the last Newton step is below ``rtol`` times each norm's error.
    max_iter : int
        Maximum Newton iterations.
    cache_psf : bool
        Reuse PSF kernels across fits when the PSF map's content, the position and
        the geometry are the same (see :mod:`rtafast.psf_kernels`). The numbers are
        identical to recomputing them.

    Examples
    --------
    Change one import line of a gammapy script::

        from rtafast import Fit          # was: from gammapy.modeling import Fit
        result = Fit().run(datasets)
        print(result.total_stat, result.ts, result.backend)
    """

    def __init__(
        self,
        backend="auto",
        optimize_opts=None,
        covariance_opts=None,
        confidence_opts=None,
        store_trace=False,
        delegate=True,
        rtol=1e-10,
        max_iter=100,
        cache_psf=True,
    ):
        optimizer = "minuit"
        if isinstance(backend, str) and backend.lower() in GAMMAPY_OPTIMIZERS:
            optimizer, backend = backend.lower(), None
        self.backend = backend
        self.delegate = delegate
        self.rtol = rtol
        self.max_iter = max_iter
        self.cache_psf = cache_psf
        self._gammapy_fit = GammapyFit(
            backend=optimizer,
            optimize_opts=optimize_opts,
            covariance_opts=covariance_opts,
            confidence_opts=confidence_opts,
            store_trace=store_trace,
        )

    def __getattr__(self, name):
        # stat_profile, stat_surface, confidence, ... are gammapy's own.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._gammapy_fit, name)

    def run(self, datasets):
        """Fit the free parameters of ``datasets``' models.

        Parameters
        ----------
        datasets : `~gammapy.datasets.Datasets` or list of `~gammapy.datasets.MapDataset`

        Returns
        -------
        RtaFitResult

        Raises
        ------
        ValueError
            No free parameter; no counts or no bin in the fit mask; NaN in counts or
            background inside the mask; mismatched geometries.
        NonLinearParameterError
            A free parameter is not a linear norm and ``delegate`` is False.
        """
        if not isinstance(datasets, Datasets):
            datasets = Datasets(datasets)
        try:
            plan = plan_linear_fit(datasets)
            if self.cache_psf:
                with default_cache.attached(datasets):
                    arrays = build_arrays(datasets, plan)
            else:
                arrays = build_arrays(datasets, plan)
        except (NonLinearParameterError, UnsupportedDatasetError) as error:
            if not self.delegate:
                raise
            log.info("rtafast.Fit delegates to gammapy.modeling.Fit: %s", error)
            return self._delegate(datasets)
        return self._fast_fit(datasets, plan, arrays)

    def _delegate(self, datasets):
        result = self._gammapy_fit.run(datasets)
        return RtaFitResult(
            backend="gammapy",
            optimize_result=result.optimize_result,
            covariance_result=result.covariance_result,
        )

    def _fast_fit(self, datasets, plan, arrays):
        backend = resolve_backend(self.backend)
        problem = CashProblem(arrays.counts, arrays.fixed, arrays.templates, backend=backend)
        bounds = [(p.min, p.max) for p in plan.parameters]
        x0 = [p.value for p in plan.parameters]
        sources = [i for i, name in enumerate(plan.source_names) if name is not None]
        fit = fit_norms(
            problem, x0=x0, bounds=bounds, rtol=self.rtol, max_iter=self.max_iter, ts_for=sources
        )

        for parameter, value in zip(plan.parameters, fit.norm, strict=True):
            parameter.value = float(value)
        matrix = _expand_covariance(datasets.models.parameters, plan.parameters, fit.covariance)
        datasets.models.covariance = matrix

        ts = {
            name: float(value)
            for name, value in zip(plan.source_names, fit.ts, strict=True)
            if name is not None
        }
        optimize_result = OptimizeResult(
            models=datasets.models.copy(),
            nfev=fit.n_evaluations,
            total_stat=float(fit.stat),
            trace=Table(),
            backend=backend.name,
            method="newton",
            success=bool(fit.success),
            message=fit.message,
        )
        optimize_result.models.covariance = matrix.copy()
        covariance_result = CovarianceResult(
            backend=backend.name,
            method="hessian",
            success=bool(np.all(np.isfinite(fit.covariance))),
            message="analytic Hessian of the Cash statistic",
            matrix=matrix,
        )
        return RtaFitResult(
            backend=backend.name,
            ts=ts,
            niter=fit.niter,
            optimize_result=optimize_result,
            covariance_result=covariance_result,
        )


def _expand_covariance(all_parameters, free_parameters, covariance):
    """Covariance over every parameter of the models (zeros for frozen ones)."""
    position = {id(p): i for i, p in enumerate(free_parameters)}
    index = np.array([position.get(id(p), -1) for p in all_parameters])
    matrix = np.zeros((len(index), len(index)))
    rows = np.flatnonzero(index >= 0)
    matrix[np.ix_(rows, rows)] = covariance[np.ix_(index[rows], index[rows])]
    return matrix
