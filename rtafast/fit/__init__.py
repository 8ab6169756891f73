"""Drop-in replacement of :class:`gammapy.modeling.Fit` for flux-only fits.

When every free parameter is a linear norm (see :mod:`rtafast.fit.linear_models`),
:meth:`Fit.run` builds the templates once with gammapy's evaluators, solves the
Cash likelihood with an rtafast kernel, and writes values, errors and covariance
back into the gammapy models where gammapy's ``Fit`` puts them. Otherwise it
runs gammapy's own code (``result.array_backend == "gammapy"``), counted by
:mod:`rtafast.dispatch` with its reason. A `rtafast.stream.StreamWindow` with models
is fitted from its counts on the backend and its pointing's per-second templates
scaled by its live time and on-time (:mod:`rtafast.fit.window`).
"""

import numpy as np
from astropy.table import Table
from gammapy.datasets import Datasets
from gammapy.modeling import Fit as GammapyFit
from gammapy.modeling.covariance import Covariance
from gammapy.modeling.fit import CovarianceResult, FitResult, OptimizeResult

from rtafast_kernels import fit_norms, resolve_backend

from .. import dispatch
from ..cache.psf import default_cache
from ..stream.window import StreamWindow
from .device_problem import cash_problem
from .linear_models import NonLinearParameterError, plan_linear_fit
from .onoff import OnOffArrays, WStatPlanError, build_onoff_arrays, fit_onoff, uses_wstat
from .templates import UnsupportedDatasetError, build_arrays
from .window import window_arrays

__all__ = ["Fit", "RtaFitResult", "NonLinearParameterError"]

#: ``OptimizeResult.backend`` of a fit done by rtafast's Newton kernel.
FAST_PATH_OPTIMIZER = "rtafast"


class RtaFitResult(FitResult):
    """gammapy's ``FitResult`` plus what rtafast adds.

    Every attribute of gammapy's ``FitResult`` keeps its meaning (``backend`` is the
    optimizer's name: ``"minuit"``, ... or ``"rtafast"`` on the fast path).

    Attributes
    ----------
    array_backend : str
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

    def __init__(self, array_backend, ts=None, niter=0, **kwargs):
        super().__init__(**kwargs)
        self.array_backend = array_backend
        self.ts = dict(ts or {})
        self.niter = niter

    @property
    def fast_path(self):
        """True if rtafast's kernel did the fit (not gammapy)."""
        return self.array_backend != "gammapy"

    def __str__(self):
        text = super().__str__()
        text += f"\trtafast array backend : {self.array_backend}\n"
        for name, ts in self.ts.items():
            text += f"\tTS({name}) : {ts:.2f}\n"
        return text


class Fit(GammapyFit):
    """Flux-only Cash fit with gammapy's ``Fit`` interface.

    A subclass of `gammapy.modeling.Fit`: the same constructor, attributes and
    methods (``optimize``, ``covariance``, ``confidence``, ``stat_profile``,
    ``stat_surface``, ``stat_contour``). ``run`` and ``optimize`` solve the Cash
    likelihood with rtafast's Newton kernel when every free parameter is a linear
    norm; any other fit runs gammapy's code with the chosen optimizer (counted by
    :mod:`rtafast.dispatch` with its reason).

    Parameters
    ----------
    backend : {"minuit", "scipy", "sherpa"}
        gammapy's optimizer, used for delegated fits (as in gammapy).
    optimize_opts, covariance_opts, confidence_opts, store_trace
        As for :class:`gammapy.modeling.Fit`. With ``store_trace`` the fit is
        delegated (the Newton solver has no optimizer trace to store).
    array_backend : {None, "auto", "numpy", "numba", "cuda"}
        rtafast compute backend (None: ``$RTAFAST_BACKEND`` or ``"auto"``).
    delegate : bool
        If False, raise :class:`NonLinearParameterError` instead of delegating
        when a free parameter is not a linear norm.
    rtol : float
        Convergence: the last Newton step is below ``rtol`` times each norm's error.
    max_iter : int
        Maximum Newton iterations.
    cache_psf : bool
        Reuse PSF kernels across fits when the PSF map's content, the position and
        the geometry are the same (see :mod:`rtafast.cache.psf`). The numbers are
        identical to recomputing them.

    Examples
    --------
    Change one import line of a gammapy script::

        from rtafast import Fit          # was: from gammapy.modeling import Fit
        result = Fit().run(datasets)
        print(result.total_stat, result.ts, result.array_backend)
    """

    def __init__(
        self,
        backend="minuit",
        optimize_opts=None,
        covariance_opts=None,
        confidence_opts=None,
        store_trace=False,
        *,
        array_backend=None,
        delegate=True,
        rtol=1e-10,
        max_iter=100,
        cache_psf=True,
    ):
        super().__init__(
            backend=backend,
            optimize_opts=optimize_opts,
            covariance_opts=covariance_opts,
            confidence_opts=confidence_opts,
            store_trace=store_trace,
        )
        resolve_backend(array_backend)  # a bad name fails here, not at the first fit
        self.array_backend = array_backend
        self.delegate = delegate
        self.rtol = rtol
        self.max_iter = max_iter
        self.cache_psf = cache_psf
        self._in_gammapy_run = False

    def run(self, datasets):
        """Fit the free parameters of ``datasets``' models.

        Parameters
        ----------
        datasets : `~gammapy.datasets.Datasets`, list of `~gammapy.datasets.Dataset` \
or `rtafast.stream.StreamWindow`
            A window is fitted with its ``models``: with one observation in it, on its
            backend from its pointing's per-second templates (the same numbers as
            fitting ``window.to_dataset()``, up to rounding; the window's backend is
            used, not ``array_backend``); otherwise as ``window.to_dataset()``.

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
        if isinstance(datasets, StreamWindow):
            return self._run_window(datasets)
        datasets = datasets if isinstance(datasets, Datasets) else Datasets(datasets)
        prepared = self._prepare(datasets, "Fit.run")
        if prepared is None:
            self._in_gammapy_run = True
            try:
                result = super().run(datasets)  # its optimize() is gammapy's too
            finally:
                self._in_gammapy_run = False
            return RtaFitResult(
                array_backend="gammapy",
                optimize_result=result.optimize_result,
                covariance_result=result.covariance_result,
            )
        return self._fast_fit(datasets, *prepared)

    def optimize(self, datasets):
        """Optimise the free parameters (gammapy's ``optimize``; Newton on the fast path).

        Parameters
        ----------
        datasets : `~gammapy.datasets.Datasets` or list of `~gammapy.datasets.Dataset`

        Returns
        -------
        `~gammapy.modeling.fit.OptimizeResult`
        """
        if self._in_gammapy_run:
            return super().optimize(datasets)
        datasets = datasets if isinstance(datasets, Datasets) else Datasets(datasets)
        prepared = self._prepare(datasets, "Fit.optimize")
        if prepared is None:
            return super().optimize(datasets)
        return self._fast_fit(datasets, *prepared, covariance=False).optimize_result

    def _prepare(self, datasets, entry):
        """The fit plan and arrays, or None (recorded) when gammapy must fit."""
        if self.store_trace:
            dispatch.record(entry, dispatch.GAMMAPY, "store-trace")
            return None
        build = build_onoff_arrays if uses_wstat(datasets) else build_arrays
        try:
            plan = plan_linear_fit(datasets)
            if self.cache_psf:
                with default_cache.attached(datasets):
                    arrays = build(datasets, plan)
            else:
                arrays = build(datasets, plan)
        except (NonLinearParameterError, UnsupportedDatasetError) as error:
            if not self.delegate:
                raise
            if isinstance(error, NonLinearParameterError):
                reason = "non-linear-parameter"
            elif isinstance(error, WStatPlanError):
                reason = WStatPlanError.reason
            else:
                reason = "unsupported-dataset"
            dispatch.record(entry, dispatch.GAMMAPY, reason, str(error))
            return None
        dispatch.record(entry, dispatch.FAST)
        return plan, arrays

    def _run_window(self, window):
        """Fit a stream window's models (see :meth:`run`)."""
        if window.pointing is None or window.models is None or self.store_trace:
            return self.run(Datasets([window.to_dataset()]))
        try:
            plan, datasets, arrays = window_arrays(window, plan_linear_fit)
        except NonLinearParameterError:
            if not self.delegate:
                raise
            return self.run(Datasets([window.to_dataset()]))  # records the delegation
        dispatch.record("Fit.run", dispatch.FAST)
        return self._fast_fit(datasets, plan, arrays, backend=window.backend)

    def _solve(self, datasets, plan, arrays, backend):
        """The kernel's fit of the plan's norms (Cash, or WStat with on/off datasets)."""
        if isinstance(arrays, OnOffArrays):
            return fit_onoff(arrays, plan.parameters[0], backend, self.rtol, self.max_iter)
        problem = cash_problem(arrays.counts, arrays.fixed, arrays.templates, backend)
        if problem.counts_total == 0:
            raise ValueError(
                "no counts in the fit mask of dataset(s) "
                f"{', '.join(repr(d.name) for d in datasets)}: nothing to fit"
            )
        bounds = [(p.min, p.max) for p in plan.parameters]
        x0 = [p.value for p in plan.parameters]
        sources = [i for i, name in enumerate(plan.source_names) if name is not None]
        return fit_norms(
            problem, x0=x0, bounds=bounds, rtol=self.rtol, max_iter=self.max_iter, ts_for=sources
        )

    def _fast_fit(self, datasets, plan, arrays, covariance=True, backend=None):
        backend = resolve_backend(self.array_backend if backend is None else backend)
        fit = self._solve(datasets, plan, arrays, backend)

        for parameter, value in zip(plan.parameters, fit.norm, strict=True):
            parameter.value = float(value)
        matrix = _expand_covariance(datasets.models.parameters, plan.parameters, fit.covariance)
        if covariance:
            datasets.models.covariance = matrix
            # as gammapy's Fit.run: Datasets.models hands this covariance to later reads
            datasets._covariance = Covariance(datasets.models.parameters, matrix)

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
            backend=FAST_PATH_OPTIMIZER,
            method="newton",
            success=bool(fit.success),
            message=fit.message,
        )
        covariance_result = None
        if covariance:
            optimize_result.models.covariance = matrix.copy()
            covariance_result = CovarianceResult(
                backend=FAST_PATH_OPTIMIZER,
                method="hessian",
                success=bool(np.all(np.isfinite(fit.covariance))),
                message="analytic Hessian of the fit statistic",
                matrix=matrix,
            )
        return RtaFitResult(
            array_backend=backend.name,
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
