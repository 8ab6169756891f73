"""Drop-in replacement of gammapy 2.1's ``LightCurveEstimator`` (flux-only fits on arrays).

See ``docs/lightcurve.md`` for what the fast path computes, what it hands to gammapy
and the measured agreement and speed.
"""

import logging
from dataclasses import dataclass

import numpy as np
from gammapy.data import GTI
from gammapy.datasets import Datasets
from gammapy.datasets.actors import DatasetsActor
from gammapy.datasets.flux_points import _get_reference_model
from gammapy.estimators import LightCurveEstimator as GammapyLightCurveEstimator
from gammapy.maps import MapAxis
from gammapy.modeling import Parameter
from gammapy.modeling.models import Models

from rtafast import dispatch

from .lightcurve_bins import energy_bin_row, select_time_bins
from .lightcurve_inputs import (
    WSTAT_CLASSES,
    UnsupportedInputError,
    check_datasets,
    dataset_arrays,
    energy_slices,
    seconds_since,
    time_array,
)
from .lightcurve_output import light_curve_flux_points

__all__ = ["LightCurveEstimator", "LightCurveOptions"]

log = logging.getLogger(__name__)

ENTRY = "LightCurveEstimator.run"


@dataclass
class LightCurveOptions:
    """The estimator settings the fast path's fits use."""

    n_sigma: float
    n_sigma_ul: float
    norm: Parameter
    norm_min: float
    norm_max: float
    errn_errp: bool
    ul: bool
    scan: bool
    sensitivity: bool
    n_sigma_sensitivity: float
    fit: object = None  # the estimator's gammapy Fit, replayed on the fast statistic


def _energy_axes_aligned(datasets):
    """gammapy's ``Datasets.energy_axes_are_aligned``; identical edges decided at once."""
    axes = [d.counts.geom.axes["energy"] for d in datasets]
    first = axes[0]
    if all(
        a is first or (a.unit == first.unit and np.array_equal(a.edges.value, first.edges.value))
        for a in axes
    ):
        return True
    return datasets.energy_axes_are_aligned


class LightCurveEstimator(GammapyLightCurveEstimator):
    """Light curve: one flux-only fit per time bin and energy bin (gammapy 2.1's API).

    Same constructor, ``run`` and result as `gammapy.estimators.LightCurveEstimator`
    (a `gammapy.estimators.FluxPoints` of format "lightcurve": ``norm``,
    ``norm_err``, ``ts``, ``stat``, ``stat_null``, ``success``, per-dataset
    ``counts``/``npred``/``npred_excess`` and the selected ``norm_errn``/``norm_errp``,
    ``norm_ul``, ``stat_scan``), plus ``array_backend``.

    The fast path (``reoptimize=False``, one process, ``MapDataset``/``SpectrumDataset``
    with Cash or ``MapDatasetOnOff``/``SpectrumDatasetOnOff`` with WStat): the
    datasets of each time bin are those gammapy's ``Datasets.select_time`` picks
    (compared in TT seconds, same ``atol``); each dataset's counts, the source's
    predicted counts at norm 1 (gammapy's evaluators, once per dataset and run) and
    the fixed part (Cash: background + other models; WStat: off counts and alpha)
    are taken once; per energy bin, gammapy's ``slice_by_energy`` bins and
    ``mask_safe & mask_fit`` select the fitted bins of all datasets of the time bin,
    and `rtafast.fit.norm_profile.fit_flux_norm` solves the norm with its Hesse error,
    TS, errn/errp and upper limit (``stat_profile`` for ``stat_scan`` on the norm's
    scan values). ``stack_over_time_interval=True`` stacks each bin's datasets with
    gammapy's ``stack_reduce`` (and its model handling) and fits the stacked one.

    Delegated to gammapy's ``run`` (counted by `rtafast.dispatch` with the reason;
    see ``tests/conformance/contract.py``): ``reoptimize=True``, ``n_jobs > 1`` or
    ray actors, ``sum_over_energy_groups``, priors on
    the models, other dataset classes, statistics or weighted masks, on/off datasets
    with other sky models than the source, datasets whose energy axes differ.

    Parameters
    ----------
    time_intervals, atol, stack_over_time_interval, **kwargs
        As `gammapy.estimators.LightCurveEstimator`.
    array_backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        rtafast backend of the fits (default ``$RTAFAST_BACKEND`` or "auto").

    Attributes
    ----------
    skipped_intervals : list of (astropy.time.Time, astropy.time.Time)
        After ``run``: the time intervals that held no dataset, dropped from the
        light curve as gammapy drops them (it only logs them).
    """

    tag = "LightCurveEstimator"

    def __init__(self, *args, array_backend=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.array_backend = array_backend
        self.skipped_intervals = []

    def run(self, datasets):
        """Light curve of the source in each time interval (gammapy's ``run``, same output).

        Parameters
        ----------
        datasets : list of `gammapy.datasets.Dataset` or `gammapy.datasets.Datasets`

        Returns
        -------
        `gammapy.estimators.FluxPoints`
            The light curve (dimensionless norms; fluxes from the reference model).
        """
        reason = self._option_delegation(datasets)
        if reason is None:
            try:
                result = self._run_fast(Datasets(datasets))
            except UnsupportedInputError as error:
                reason = (error.reason, error.detail)
            else:
                dispatch.record(ENTRY, dispatch.FAST)
                return result
        dispatch.record(ENTRY, dispatch.GAMMAPY, *reason)
        self.skipped_intervals = []
        return super().run(datasets)

    def _option_delegation(self, datasets):
        """``(reason, detail)`` for options the fast path does not handle, else None."""
        if self.reoptimize:
            return "lightcurve-reoptimize", "reoptimize=True refits the other models' parameters"
        if isinstance(datasets, DatasetsActor):
            return "lightcurve-parallel", "datasets are ray actors"
        if self.n_jobs > 1:
            return "lightcurve-parallel", f"n_jobs={self.n_jobs}"
        if self.sum_over_energy_groups:
            return "lightcurve-energy-groups", "sum_over_energy_groups=True"
        if self.energy_edges is None:
            return "lightcurve-energy-groups", "energy_edges=None"
        return None

    def _options(self):
        selection = self.selection_optional
        return LightCurveOptions(
            n_sigma=self.n_sigma,
            n_sigma_ul=self.n_sigma_ul,
            norm=self.norm,
            norm_min=self.norm.min,
            norm_max=self.norm.max,
            errn_errp="errn-errp" in selection,
            ul="ul" in selection,
            scan="scan" in selection,
            sensitivity="sensitivity" in selection,
            n_sigma_sensitivity=self.n_sigma_sensitivity,
            fit=self.fit,
        )

    def _time_gti(self, datasets):
        gti = datasets.gti if self.time_intervals is None else None
        if gti is None:
            gti = GTI.from_time_intervals(self.time_intervals)
        return gti.union(overlap_ok=False, merge_equal=False)

    def _reference_rows(self, datasets, slices):
        """Per energy bin: gammapy's ``reference_fluxes`` of the scale model, scalars."""
        model = self.get_scale_model(datasets.models)
        axis = datasets[0].counts.geom.axes["energy"]
        rows = []
        for energy_slice in slices:
            if energy_slice is None:
                rows.append(None)
                continue
            edges = axis.edges[[energy_slice.start, energy_slice.stop]]
            with np.errstate(invalid="ignore", divide="ignore"):
                fluxes = model.reference_fluxes(energy_axis=MapAxis.from_energy_edges(edges))
            rows.append({key: value.item() for key, value in fluxes.items()})
        return rows

    def _stacked_arrays(self, datasets, selected, source):
        """gammapy's per-bin ``stack_reduce`` (and its model handling), as arrays."""
        reduced = Datasets(selected).stack_reduce(name="stacked")
        models = Models(datasets.models.copy())
        for model_name in models.background_models.values():
            models.remove(model_name)
        for dataset in datasets:
            models.reassign(dataset.name, reduced.name)
        reduced.models = models
        check_datasets([reduced])
        return [dataset_arrays(reduced, source)]

    def _run_fast(self, datasets):
        check_datasets(datasets)
        kinds = {type(d) in WSTAT_CLASSES for d in datasets}
        if len(kinds) > 1:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset", "on/off (WStat) and Cash datasets mixed"
            )
        if not _energy_axes_aligned(datasets):
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset", "the datasets' energy axes differ"
            )
        if any(p.prior is not None for p in datasets.models.parameters):
            raise UnsupportedInputError("lightcurve-priors", "a model parameter has a prior")
        source = datasets.models[self.source].name
        gti = self._time_gti(datasets)
        time_start, time_stop = gti.time_start, gti.time_stop
        reference_time = time_start[0]
        arrays = [None] * len(datasets)
        starts = [d.gti.table["START"][0] for d in datasets]
        stops = [d.gti.table["STOP"][-1] for d in datasets]
        spans = np.stack(
            [seconds_since(time_array(t), reference_time) for t in (starts, stops)], axis=1
        )
        selections = select_time_bins(
            spans, time_start, time_stop, reference_time, self.atol.to_value("s")
        )
        slices = energy_slices(datasets[0].counts.geom.axes["energy"], self.energy_edges)
        references = self._reference_rows(datasets, slices)
        options = self._options()
        bin_rows, intervals, gti_intervals, names = [], [], [], datasets.names
        self.skipped_intervals = []
        for i, selected in enumerate(selections):
            if len(selected) == 0:
                interval = (time_start[i], time_stop[i])
                log.info(f"No Dataset for the time interval {interval[0]} to {interval[1]}.")
                self.skipped_intervals.append(interval)
                continue
            intervals.append([time_start[i], time_stop[i]])
            chosen = [datasets[int(k)] for k in selected]
            if self.stack_over_time_interval:
                bin_arrays = self._stacked_arrays(datasets, chosen, source)
                gti = bin_arrays[0].dataset.gti.table
                gti_intervals.append((gti["START"][0], gti["STOP"][-1]))
                names = ["stacked"]
            else:
                gti_intervals.extend((starts[int(k)], stops[int(k)]) for k in selected)
                for k in selected:
                    if arrays[k] is None:
                        arrays[k] = dataset_arrays(datasets[int(k)], source)
                bin_arrays = [arrays[int(k)] for k in selected]
            bin_rows.append(self._bin_rows(bin_arrays, slices, references, options))
        if not bin_rows:
            raise ValueError("LightCurveEstimator: No datasets in time intervals")
        meta = {"n_sigma": self.n_sigma, "n_sigma_ul": self.n_sigma_ul}
        meta["sed_type_init"] = "likelihood"
        model = _get_reference_model(datasets.models[self.source], self.energy_edges)
        return light_curve_flux_points(bin_rows, intervals, gti_intervals, names, meta, model)

    def _bin_rows(self, bin_arrays, slices, references, options):
        rows = []
        for energy_slice, reference, energy_min, energy_max in zip(
            slices, references, self.energy_edges[:-1], self.energy_edges[1:], strict=True
        ):
            if energy_slice is None:
                bin_datasets = Datasets([a.dataset for a in bin_arrays])
                model = _get_reference_model(bin_datasets.models[self.source], self.energy_edges)
                rows.append(self._nan_result(bin_datasets, model, energy_min, energy_max))
                continue
            rows.append(
                energy_bin_row(bin_arrays, energy_slice, reference, options, self.array_backend)
            )
        return rows
