"""Turn gammapy datasets and a :class:`~rtafast.linear_models.LinearPlan` into arrays.

For every dataset, over the bins of its fit mask (``mask_safe & mask_fit``):
the observed counts, the predicted counts of everything that is fixed, and one
template per free norm (its component's predicted counts at norm 1, computed
with gammapy's own evaluators). Datasets are concatenated, so joint fits and
parameters shared between datasets need no special case.
"""

from dataclasses import dataclass

import numpy as np
from gammapy.datasets import MapDataset, MapDatasetOnOff

__all__ = ["DatasetArrays", "UnsupportedDatasetError", "build_arrays"]


class UnsupportedDatasetError(TypeError):
    """A dataset type or statistic that the fast path does not handle."""


@dataclass
class DatasetArrays:
    """Flattened fit-mask bins of all datasets, ready for a ``CashProblem``."""

    counts: np.ndarray
    fixed: np.ndarray
    templates: np.ndarray  # (K, N)


def _check_dataset(dataset):
    if not isinstance(dataset, MapDataset) or isinstance(dataset, MapDatasetOnOff):
        raise UnsupportedDatasetError(
            f"dataset {dataset.name!r} is a {type(dataset).__name__}; the fast path "
            "fits MapDataset/SpectrumDataset with the Cash statistic"
        )
    if dataset.stat_type != "cash":
        raise UnsupportedDatasetError(
            f"dataset {dataset.name!r} uses the {dataset.stat_type!r} statistic, not 'cash'"
        )
    if dataset.counts is None:
        raise ValueError(f"dataset {dataset.name!r} has no counts map")
    reference = dataset.counts.geom
    for label in ("background", "mask_safe", "mask_fit", "exposure"):
        other = getattr(dataset, label)
        if other is None:
            continue
        shape = other.geom.data_shape
        if label == "exposure":
            # exposure is in true energy: compare the spatial part only
            shape, ref_shape = shape[-2:], reference.data_shape[-2:]
        else:
            ref_shape = reference.data_shape
        if shape != ref_shape:
            raise ValueError(
                f"dataset {dataset.name!r}: {label} map has shape {other.geom.data_shape} "
                f"but counts has {reference.data_shape}; geometries must match"
            )
        if label != "exposure" and other.geom.to_image() != reference.to_image():
            raise ValueError(
                f"dataset {dataset.name!r}: {label} map's sky geometry differs from the "
                "counts map's (different WCS, centre or binning)"
            )


def _masked_finite(dataset, label, data, mask):
    values = np.asarray(data, dtype=np.float64)[mask]
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"dataset {dataset.name!r}: {label} has {int(bad.sum())} NaN/inf value(s) inside "
            "the fit mask; fix the map or exclude those bins with mask_safe/mask_fit"
        )
    return values


def _scaled_npred(parameter, evaluate):
    """Predicted counts per unit of ``parameter`` (evaluated at a non-zero value)."""
    value = parameter.value
    reference = value if value != 0 else 1.0
    if reference != value:
        parameter.value = reference
    try:
        return evaluate() / reference
    finally:
        if reference != value:
            parameter.value = value


def build_arrays(datasets, plan):
    """Build the counts, fixed prediction and templates of all datasets.

    Parameters
    ----------
    datasets : `~gammapy.datasets.Datasets`
    plan : `~rtafast.linear_models.LinearPlan`

    Returns
    -------
    DatasetArrays

    Raises
    ------
    UnsupportedDatasetError
        For datasets other than Cash MapDatasets.
    ValueError
        For mismatched geometries, NaN inside the mask, an empty mask, no counts
        in the mask, or a free component that predicts no counts in it.
    """
    counts, fixed, templates = [], [], []
    k = len(plan.parameters)
    free_backgrounds = {id(m) for m in plan.free_background_models}
    for dataset in datasets:
        _check_dataset(dataset)
        mask = np.ones(dataset.counts.data.shape, dtype=bool)
        if dataset.mask is not None:
            mask = dataset.mask.data.astype(bool)
        n_bins = int(mask.sum())
        if n_bins == 0:
            continue
        counts.append(_masked_finite(dataset, "counts", dataset.counts.data, mask))
        if dataset.background is not None:
            _masked_finite(dataset, "background", dataset.background.data, mask)

        evaluator_names = set(dataset.evaluators)
        fixed_data = np.zeros(n_bins)
        background_model = dataset.background_model
        if dataset.background is not None and (
            background_model is None or id(background_model) not in free_backgrounds
        ):
            fixed_data += _masked_finite(
                dataset, "background", dataset.npred_background().data, mask
            )
        fixed_names = [m.name for m in plan.fixed_sky_models if m.name in evaluator_names]
        if fixed_names:
            fixed_data += dataset.npred_signal(model_names=fixed_names).data[mask]
        fixed.append(fixed_data)

        dataset_templates = np.zeros((k, n_bins))
        for index, (parameter, components) in enumerate(
            zip(plan.parameters, plan.components, strict=True)
        ):
            for component in components:
                if component.is_background:
                    if component.model is not background_model:
                        continue
                    if dataset.background is None:
                        raise ValueError(
                            f"dataset {dataset.name!r}: background norm of "
                            f"{component.model.name!r} is free but the dataset has no "
                            "background map"
                        )
                    npred = _scaled_npred(parameter, dataset.npred_background)
                elif component.model.name in evaluator_names:
                    name = component.model.name
                    npred = _scaled_npred(
                        parameter,
                        lambda d=dataset, name=name: d.npred_signal(model_names=[name]),
                    )
                else:
                    continue
                dataset_templates[index] += npred.data[mask]
        templates.append(dataset_templates)

    if not counts:
        raise ValueError(
            "the fit mask (mask_safe & mask_fit) selects no bin in any dataset: "
            f"{', '.join(repr(d.name) for d in datasets)}"
        )
    arrays = DatasetArrays(
        counts=np.concatenate(counts),
        fixed=np.concatenate(fixed),
        templates=np.concatenate(templates, axis=1),
    )
    if arrays.counts.sum() == 0:
        raise ValueError(
            "no counts in the fit mask of dataset(s) "
            f"{', '.join(repr(d.name) for d in datasets)}: nothing to fit"
        )
    empty = ~(arrays.templates != 0).any(axis=1)
    if empty.any():
        names = [plan.parameters[i].name for i in np.flatnonzero(empty)]
        raise ValueError(
            f"free parameter(s) {names} scale components that predict no counts inside the "
            "fit mask: their norm is undetermined"
        )
    return arrays
