"""gammapy's one-norm estimator fit, step for step, on rtafast's fast statistic.

gammapy's ``FluxEstimator`` (``ParameterEstimator`` with ``reoptimize=False``) fits the
norm with its ``Fit``: ``optimize`` (``Parameters.autoscale``, then the backend's
optimiser — MINUIT's MIGRAD at ``Fit.optimize_opts``, default ``tol=0.1``,
``strategy=1``, ``errordef=1``, start error ``error / scale`` or 1 — on the parameter
factors), ``covariance`` (MINUIT's covariance of that MIGRAD run, scaled back by
``Covariance.from_factor_matrix``), and before each of errn/errp, ul and scan one more
``optimize`` from the previous best fit, then ``confidence`` (scipy's ``brentq`` on
``stat - stat_best - n_sigma**2`` by default). MIGRAD at ``tol=0.1`` stops short of
the minimum (up to ~1e-3 relative on real light curves), so only the same optimiser
with the same settings gives gammapy's numbers.

:class:`NormFitReplay` runs gammapy's own backend functions (``registry`` of
``gammapy.modeling.fit``: ``optimize_iminuit``, ``covariance_iminuit``,
``confidence_scipy``, ...) on a copy of the estimator's norm ``Parameter`` with the
statistic given as a function of the norm — rtafast's kernels (``cash_reduce``,
``wstat_reduce`` through `rtafast.fit.norm_profile.norm_problem`) instead of
``Datasets.stat_sum``. The statistic agrees with gammapy's to ~1e-12 relative, so
MIGRAD takes the same steps and stops at the same norm. Any ``Fit`` (backend, tolerance,
strategy, ``migrad_opts``, confidence backend) is replayed as gammapy would run it;
the exact minimum stays available as `rtafast.fit.norm_profile.fit_flux_norm`.
"""

import numpy as np
from gammapy.modeling import Parameters
from gammapy.modeling.covariance import Covariance
from gammapy.modeling.fit import registry

from .norm_profile import NormProfile

__all__ = ["NormFitReplay", "estimate_norm"]


class NormFitReplay:
    """gammapy's ``Fit.run``/``optimize``/``confidence`` for one free norm.

    Parameters
    ----------
    fit : gammapy.modeling.Fit
        The estimator's fit (its backend and ``optimize_opts``/``covariance_opts``/
        ``confidence_opts`` are used as gammapy uses them).
    norm : gammapy.modeling.Parameter
        The estimator's norm (start value, error, bounds, interpolation, scan
        settings); a copy is fitted.
    stat : callable
        ``stat(norm) -> float``: the summed fit statistic (``-2 ln L``) at a norm.

    Attributes
    ----------
    parameter : gammapy.modeling.Parameter
        The fitted copy, in the state gammapy's parameter is in after the same calls
        (value: the last ``optimize``'s; error: the covariance's).
    nfev : int
        Statistic evaluations so far.
    """

    def __init__(self, fit, norm, stat):
        self.fit = fit
        self.parameter = norm.copy()
        self.parameter.frozen = False
        self.parameters = Parameters([self.parameter])
        self._stat = stat
        self._minuit = None
        self._backend = None
        self.nfev = 0

    def function(self):
        """The statistic at the parameter's current value (``Datasets.stat_sum``)."""
        self.nfev += 1
        return self._stat(self.parameter.value)

    def optimize(self):
        """gammapy's ``Fit.optimize``: autoscale, the backend's optimiser on factors.

        Returns
        -------
        success : bool
            The optimiser's success flag (MINUIT: ``valid``).
        message : str
        """
        parameters = self.parameters
        parameters.check_limits()
        parameters.autoscale()
        kwargs = self.fit.optimize_opts.copy()
        backend = kwargs.pop("backend", self.fit.backend)
        compute = registry.get("optimize", backend)
        factors, info, optimizer = compute(
            parameters=parameters, function=self.function, store_trace=False, **kwargs
        )
        self._backend = backend
        self._minuit = optimizer if backend == "minuit" else None
        parameters.set_parameter_factors(factors)
        parameters.check_limits()
        return bool(info["success"]), str(info["message"])

    def covariance(self):
        """gammapy's ``Fit.covariance`` after ``optimize``; sets the parameter's error.

        Returns
        -------
        bool
            The covariance's success flag (MINUIT: a covariance matrix exists).
        """
        kwargs = self.fit.covariance_opts.copy()
        if self._backend == "minuit":
            kwargs["minuit"] = self._minuit
        backend = kwargs.pop("backend", self.fit.backend)
        compute = registry.get("covariance", backend)
        with self.parameters.restore_status():
            factor_matrix, info = compute(
                parameters=self.parameters, function=self.function, **kwargs
            )
            matrix = Covariance.from_factor_matrix(parameters=self.parameters, matrix=factor_matrix)
        self.parameter.error = float(np.sqrt(matrix.data[0][0]))
        return bool(info["success"])

    def run(self):
        """gammapy's ``Fit.run``: optimize, then the covariance where the backend has one.

        Returns
        -------
        success : bool
            Optimiser and covariance success (gammapy's ``FitResult.success``).
        message : str
        """
        success, message = self.optimize()
        if self.fit.backend not in registry.register["covariance"]:
            return success, message
        return success & self.covariance(), message

    def confidence(self, sigma):
        """gammapy's ``Fit.confidence`` (``reoptimize=False``) at the current value.

        Parameters
        ----------
        sigma : float
            Number of standard deviations (``stat`` rises by ``sigma**2``).

        Returns
        -------
        errn, errp : float
            Distances (norm units) from the current value to the crossings below and
            above (NaN where the backend finds none).
        """
        kwargs = self.fit.confidence_opts.copy()
        backend = kwargs.pop("backend", self.fit.backend)
        compute = registry.get("confidence", backend)
        with self.parameters.restore_status():
            result = compute(
                parameters=self.parameters,
                parameter=self.parameter,
                function=self.function,
                sigma=sigma,
                reoptimize=False,
                **kwargs,
            )
        scale = self.parameter.scale
        return result["errn"] * scale, result["errp"] * scale


def estimate_norm(problem, fit, norm, options):
    """gammapy's ``ParameterEstimator`` steps for the norm, on a fast statistic.

    Parameters
    ----------
    problem : object with ``reduce(norm)``
        The statistic (`rtafast.fit.norm_profile.norm_problem`), at least one bin.
    fit : gammapy.modeling.Fit
        The estimator's fit.
    norm : gammapy.modeling.Parameter
        The estimator's norm (start value, error, bounds, scan settings).
    options : object
        ``n_sigma``, ``n_sigma_ul``, ``errn_errp``, ``ul``, ``scan`` (booleans for the
        selected optional steps), as `rtafast.estimators.lightcurve.LightCurveOptions`.

    Returns
    -------
    profile : `rtafast.fit.norm_profile.NormProfile`
        ``norm`` and ``norm_err`` (``n_sigma`` x error) of the first fit, ``stat`` there,
        ``stat_null`` at norm 0, ``ts``, ``success`` (gammapy's ``FitResult.success``),
        ``norm_errn``/``norm_errp`` around the second optimisation's value, ``norm_ul``
        as gammapy's (``errp`` + the third optimisation's value); ``niter`` counts the
        statistic evaluations.
    parameter : gammapy.modeling.Parameter
        The norm as gammapy's is when the scan and the sensitivity read it (value of
        the last optimisation, error of the covariance).
    """
    replay = NormFitReplay(fit, norm, lambda value: float(problem.reduce(value)[0]))
    success, message = replay.run()
    best, error = replay.parameter.value, replay.parameter.error
    stat = replay.function()
    stat_null = float(problem.reduce(0.0)[0])
    profile = NormProfile.from_minimum(
        best, error * options.n_sigma, stat, stat_null, bool(success), 0, message, problem.n_ignored
    )
    if options.errn_errp:
        replay.optimize()
        profile.norm_errn, profile.norm_errp = replay.confidence(options.n_sigma)
    if options.ul:
        replay.optimize()
        profile.norm_ul = replay.confidence(options.n_sigma_ul)[1] + replay.parameter.value
    if options.scan:
        replay.optimize()
    profile.niter = replay.nfev
    return profile, replay.parameter
