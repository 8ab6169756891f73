"""WStat (on/off) datasets in rtafast's flux-only :class:`~rtafast.fit.Fit`.

gammapy fits ``MapDatasetOnOff``/``SpectrumDatasetOnOff`` with the WStat statistic: the
background of every bin is profiled analytically (``gammapy.stats.get_wstat_mu_bkg``),
so only the signal's norms are free. For one free linear norm, the arrays of the
fitted bins (``mask_safe & mask_fit``) -- on counts, off counts, alpha and the free
source's predicted counts at a reference norm -- go to the ``wstat_reduce`` kernel
through :func:`rtafast.fit.norm_profile.minimize_norm`; Cash datasets in the same fit
(a joint fit of on/off and 3D datasets) add their Cash problem to the same sum.

What the fast path does not fit here, and hands to gammapy (reason
``"wstat-not-one-norm"``): several free norms, a free background norm, or frozen sky
models that predict counts in an on/off dataset (WStat's signal is then not
proportional to the free norm). Bins whose alpha is not a finite positive number are
left out: gammapy's statistic is NaN there for every norm and counts 0
(``nan_to_num``).
"""

import math
from dataclasses import dataclass

import numpy as np
from gammapy.datasets import Datasets, MapDatasetOnOff

from rtafast_kernels import NormFitResult

from .norm_profile import minimize_norm, norm_problem
from .templates import UnsupportedDatasetError, _scaled_npred, build_arrays, fit_mask

__all__ = ["OnOffArrays", "WStatPlanError", "build_onoff_arrays", "fit_onoff", "uses_wstat"]

#: ``rtafast.dispatch`` reason code of the on/off fits the fast path hands to gammapy.
REASON = "wstat-not-one-norm"


class WStatPlanError(UnsupportedDatasetError):
    """An on/off (WStat) fit the fast path does not do (see the module docstring)."""

    #: The ``rtafast.dispatch`` reason code of its delegation.
    reason = REASON


def is_wstat(dataset):
    """True for a dataset fitted with gammapy's WStat statistic (an on/off dataset)."""
    return isinstance(dataset, MapDatasetOnOff) and dataset.stat_type == "wstat"


def uses_wstat(datasets):
    """True when any of ``datasets`` is fitted with WStat."""
    return any(is_wstat(d) for d in datasets)


@dataclass
class OnOffArrays:
    """The fitted bins of a one-norm fit with WStat datasets (host arrays).

    ``signal`` is the free source's predicted counts at the norm ``reference`` (the
    parameter's value when the fit starts, 1 if zero): the fit solves the factor
    ``norm / reference``, which starts at 1 as gammapy's optimizer does.
    """

    counts: np.ndarray
    counts_off: np.ndarray
    alpha: np.ndarray
    signal: np.ndarray
    cash: object  # DatasetArrays of the Cash datasets, or None
    reference: float
    n_ignored: int


def _onoff_bins(dataset, parameter, components, fixed_models, reference):
    """Counts, off counts, alpha and signal at ``reference`` of one on/off dataset."""
    mask = fit_mask(dataset)
    if dataset.counts_off is None:
        raise ValueError(f"dataset {dataset.name!r} is an on/off dataset without counts_off")
    counts = np.asarray(dataset.counts.data, dtype=np.float64)[mask]
    counts_off = np.asarray(dataset.counts_off.data, dtype=np.float64)[mask]
    alpha = np.asarray(dataset.alpha.data, dtype=np.float64)[mask]
    for name, values in (("counts", counts), ("counts_off", counts_off)):
        if not np.isfinite(values).all():
            raise ValueError(
                f"dataset {dataset.name!r}: {name} has {int((~np.isfinite(values)).sum())} "
                "NaN/inf value(s) inside the fit mask"
            )
    names = set(dataset.evaluators)
    fixed = [m.name for m in fixed_models if m.name in names]
    if fixed and np.any(dataset.npred_signal(model_names=fixed).data[mask] != 0):
        raise WStatPlanError(
            f"dataset {dataset.name!r}: frozen sky model(s) {fixed} predict counts in an "
            "on/off dataset; the fast path fits WStat with the free source alone"
        )
    signal = np.zeros(counts.size)
    for component in components:
        name = component.model.name
        if name in names:
            npred = _scaled_npred(
                parameter, lambda d=dataset, name=name: d.npred_signal(model_names=[name])
            )
            signal += np.asarray(npred.data, dtype=np.float64)[mask] * reference
    valid = (alpha > 0) & np.isfinite(alpha)
    return counts[valid], counts_off[valid], alpha[valid], signal[valid], int((~valid).sum())


def build_onoff_arrays(datasets, plan):
    """The arrays of a fit with WStat datasets (and possibly Cash ones).

    Parameters
    ----------
    datasets : `~gammapy.datasets.Datasets`
        The fitted datasets: WStat on/off datasets, possibly with Cash ones (a joint fit).
    plan : `~rtafast.fit.linear_models.LinearPlan`
        The free norms; on/off datasets need exactly one, of sky models only.

    Returns
    -------
    OnOffArrays
        The WStat bins (alpha finite and positive) and the Cash datasets' arrays, with the
        signal at the parameter's starting value.

    Raises
    ------
    WStatPlanError
        Not one free norm of sky models alone (see the module docstring).
    ValueError
        No counts_off, NaN counts inside the mask, no bins, a norm predicting nothing.
    """
    if len(plan.parameters) != 1 or plan.free_background_models:
        raise WStatPlanError(
            f"{len(plan.parameters)} free norm(s)"
            + (" including a background norm" if plan.free_background_models else "")
            + " with on/off datasets: the fast path fits WStat with one free source norm"
        )
    parameter = plan.parameters[0]
    reference = parameter.value if parameter.value != 0 else 1.0
    parts, cash_datasets, n_ignored = [], [], 0
    for dataset in datasets:
        if not is_wstat(dataset):
            cash_datasets.append(dataset)
            continue
        if not fit_mask(dataset).any():
            continue
        *bins, ignored = _onoff_bins(
            dataset, parameter, plan.components[0], plan.fixed_sky_models, reference
        )
        parts.append(bins)
        n_ignored += ignored
    cash = None
    if cash_datasets:
        cash = build_arrays(Datasets(cash_datasets), plan)
        cash.templates = cash.templates * reference
    if not parts and cash is None:
        raise ValueError(
            "the fit mask (mask_safe & mask_fit) selects no bin in any dataset: "
            f"{', '.join(repr(d.name) for d in datasets)}"
        )
    if parts:
        columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    else:
        columns = [np.zeros(0)] * 4
    signal_total = np.abs(columns[3]).sum() + (0 if cash is None else np.abs(cash.templates).sum())
    if signal_total == 0:
        raise ValueError(
            f"free parameter {parameter.name!r} scales components that predict no counts "
            "inside the fit mask: its norm is undetermined"
        )
    return OnOffArrays(*columns, cash=cash, reference=reference, n_ignored=n_ignored)


class _JointNorm:
    """Sum of one-norm statistics (WStat datasets and Cash datasets of a joint fit)."""

    def __init__(self, parts):
        self.parts = parts

    def reduce(self, norm, need_stat=True):
        total = [0.0, 0.0, 0.0]
        for part in self.parts:
            for j, value in enumerate(part.reduce(norm, need_stat)):
                total[j] += value
        return tuple(total)


def fit_onoff(arrays, parameter, backend, rtol, max_iter):
    """Fit the single free norm of :class:`OnOffArrays`.

    Parameters
    ----------
    arrays : OnOffArrays
    parameter : `~gammapy.modeling.Parameter`
        The free norm (its ``min``/``max`` bound the fit).
    backend : backend object
    rtol, max_iter : float, int
        See :func:`rtafast.fit.norm_profile.minimize_norm`.

    Returns
    -------
    `rtafast_kernels.NormFitResult`
        In the parameter's units (``norm``, ``covariance``), TS ``stat(0) - stat(best)``.
    """
    parts = []
    if arrays.counts.size:
        parts.append(
            norm_problem(
                arrays.counts,
                arrays.signal,
                counts_off=arrays.counts_off,
                alpha=arrays.alpha,
                backend=backend,
            )
        )
    if arrays.cash is not None:
        cash = arrays.cash
        parts.append(
            norm_problem(cash.counts, cash.templates[0], background=cash.fixed, backend=backend)
        )
    problem = _JointNorm(parts)
    scale = arrays.reference
    bounds = sorted(
        (
            -math.inf if np.isnan(parameter.min) else parameter.min / scale,
            math.inf if np.isnan(parameter.max) else parameter.max / scale,
        )
    )
    best, success, message, niter = minimize_norm(problem, *bounds, 1.0, rtol, max_iter)
    stat, _, hess = problem.reduce(best)
    variance = 2.0 / hess * scale * scale if hess > 0 else math.inf
    stat_null = problem.reduce(0.0)[0]
    return NormFitResult(
        norm=np.array([best * scale]),
        norm_err=np.array([math.sqrt(variance)]),
        covariance=np.array([[variance]]),
        stat=stat,
        ts=np.array([stat_null - stat]),
        niter=niter,
        n_evaluations=niter + 2,
        success=success,
        message=message,
    )
