"""Turn gammapy datasets and a :class:`~rtafast.fit.linear_models.LinearPlan` into arrays.

For every dataset, over the bins of its fit mask (``mask_safe & mask_fit``):
the observed counts, the predicted counts of everything that is fixed, and one
template per free norm (its component's predicted counts at norm 1, computed
with gammapy's own evaluators). Datasets are concatenated, so joint fits and
parameters shared between datasets need no special case.
"""

from dataclasses import dataclass

import numpy as np
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.maps import WcsGeom

__all__ = [
    "DatasetArrays",
    "UnsupportedDatasetError",
    "build_arrays",
    "check_dataset",
    "check_templates",
    "fit_mask",
    "model_arrays",
]


class UnsupportedDatasetError(TypeError):
    """A dataset type or statistic that the fast path does not handle."""


@dataclass
class DatasetArrays:
    """Flattened fit-mask bins of all datasets, ready for a ``CashProblem``."""

    counts: np.ndarray
    fixed: np.ndarray
    templates: np.ndarray  # (K, N)


def _shape(geom):
    """The data shape of a geometry as plain ints (gammapy's holds numpy integers)."""
    return tuple(int(n) for n in geom.data_shape)


def _format_value(value):
    return f"{float(value):.6g}"


def _axis_difference(label, axis, reference):
    """Why ``axis`` (of map ``label``) differs from the counts' ``reference``, or None."""
    name = reference.name
    if not axis.unit.is_equivalent(reference.unit):
        return f"{name} axis units differ: {label} {axis.unit}, counts {reference.unit}"
    edges = axis.edges.to_value(reference.unit)
    ref_edges = reference.edges.to_value(reference.unit)
    ends = (axis.edges[0], axis.edges[-1])
    ref_ends = (reference.edges[0], reference.edges[-1])

    def _range(lo_hi, unit):
        lo, hi = (_format_value(q.to_value(unit)) for q in lo_hi)
        return f"{lo}\u2013{hi} {unit}".rstrip()

    if axis.nbin != reference.nbin:
        return (
            f"{name} axis has {int(axis.nbin)} bins in {label} ({_range(ends, axis.unit)}) "
            f"but {int(reference.nbin)} in counts ({_range(ref_ends, reference.unit)})"
        )
    close = np.isclose(edges, ref_edges, rtol=1e-6, atol=0)
    if close.all():
        return None
    if not (close[0] and close[-1]):
        return (
            f"{name} axis edges differ: {label} {_range(ends, axis.unit)}, "
            f"counts {_range(ref_ends, reference.unit)}"
        )
    index = int(np.flatnonzero(~close)[0])
    return (
        f"{name} axis edges differ: edge {index} of {int(axis.nbin) + 1} is "
        f"{_format_value(axis.edges[index].value)} {axis.unit} in {label}, "
        f"{_format_value(reference.edges[index].value)} {reference.unit} in counts"
    )


def _axes_difference(label, geom, reference):
    """Why the non-spatial axes of ``geom`` differ from the counts' ``reference``, or None."""
    names, ref_names = list(geom.axes.names), list(reference.axes.names)
    if names != ref_names:
        return f"non-spatial axes differ: {label} has {names}, counts has {ref_names}"
    for axis, ref_axis in zip(geom.axes, reference.axes, strict=True):
        problem = _axis_difference(label, axis, ref_axis)
        if problem:
            return problem
    return None


def _describe_sky(geom):
    """The sky part of a geometry in words: pixels, pixel size, projection, centre."""
    if not isinstance(geom, WcsGeom):
        return f"a {type(geom).__name__} of shape {_shape(geom)}"
    ny, nx = _shape(geom)[-2:]
    scale = np.abs(geom.pixel_scales.to_value("deg"))
    center = geom.center_skydir
    return (
        f"{nx}x{ny} pixels of {_format_value(scale[0])}x{_format_value(scale[1])} deg, "
        f"{geom.projection} {geom.frame}, centre ({center.data.lon.deg:.6g}, "
        f"{center.data.lat.deg:.6g}) deg"
    )


def _describe_wcs(geom):
    wcs = geom.wcs.wcs
    return (
        f"CRVAL {[_format_value(v) for v in wcs.crval]}, CRPIX "
        f"{[_format_value(v) for v in wcs.crpix]}, CDELT {[_format_value(v) for v in wcs.cdelt]}"
    ).replace("'", "")


def _sky_difference(label, geom, reference):
    """Why the sky (spatial) part of ``geom`` differs from the counts', or None."""
    image, ref_image = geom.to_image(), reference.to_image()
    if type(image) is not type(ref_image):
        return (
            f"sky geometry differs: {label} is a {type(image).__name__}, counts a "
            f"{type(ref_image).__name__}"
        )
    if image == ref_image:
        return None
    what = "sky geometry differs"
    if _shape(image) != _shape(ref_image):
        what = f"map has shape {_shape(geom)} but counts has {_shape(reference)}: {what}"
    describe, ref_describe = _describe_sky(image), _describe_sky(ref_image)
    if describe == ref_describe and isinstance(image, WcsGeom):
        describe, ref_describe = _describe_wcs(image), _describe_wcs(ref_image)
    return f"{label} {what}: {label} {describe}; counts {ref_describe}"


def check_dataset(dataset):
    """Raise when the fast path cannot fit a dataset (type, statistic, geometries)."""
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
        problem = None
        if label != "exposure":  # exposure is in true energy: its sky part only
            problem = _axes_difference(label, other.geom, reference)
        problem = problem or _sky_difference(label, other.geom, reference)
        if problem:
            raise ValueError(
                f"dataset {dataset.name!r}: {problem}; the {label} map's geometry must be "
                "the counts map's"
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


def model_arrays(dataset, plan, mask):
    """The fixed prediction and templates of one dataset's masked bins, split by what
    they scale with (the background map: on-time; the exposure: live time).

    Parameters
    ----------
    dataset : `~gammapy.datasets.MapDataset`
        With the plan's models.
    plan : `~rtafast.fit.linear_models.LinearPlan`
    mask : ndarray of bool
        The bins (the fit mask), of the counts' shape.

    Returns
    -------
    fixed_background, fixed_signal : ndarray, shape (N,)
        Predicted counts of the frozen background and of the frozen sky models.
    templates_background, templates_signal : ndarray, shape (K, N)
        Each free norm's components at norm 1: background and sky models.

    Raises
    ------
    ValueError
        NaN in the background inside the mask; a free background norm without a
        background map.
    """
    n_bins = int(mask.sum())
    k = len(plan.parameters)
    free_backgrounds = {id(m) for m in plan.free_background_models}
    evaluator_names = set(dataset.evaluators)
    fixed_background = np.zeros(n_bins)
    fixed_signal = np.zeros(n_bins)
    background_model = dataset.background_model
    if dataset.background is not None and (
        background_model is None or id(background_model) not in free_backgrounds
    ):
        fixed_background += _masked_finite(
            dataset, "background", dataset.npred_background().data, mask
        )
    fixed_names = [m.name for m in plan.fixed_sky_models if m.name in evaluator_names]
    if fixed_names:
        fixed_signal += dataset.npred_signal(model_names=fixed_names).data[mask]

    templates_background = np.zeros((k, n_bins))
    templates_signal = np.zeros((k, n_bins))
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
                templates_background[index] += npred.data[mask]
            elif component.model.name in evaluator_names:
                name = component.model.name
                npred = _scaled_npred(
                    parameter,
                    lambda d=dataset, name=name: d.npred_signal(model_names=[name]),
                )
                templates_signal[index] += npred.data[mask]
    return fixed_background, fixed_signal, templates_background, templates_signal


def fit_mask(dataset):
    """The bins a dataset is fitted on: ``mask_safe & mask_fit`` (all without masks)."""
    if dataset.mask is not None:
        return dataset.mask.data.astype(bool)
    return np.ones(dataset.counts.data.shape, dtype=bool)


def build_arrays(datasets, plan):
    """Build the counts, fixed prediction and templates of all datasets.

    Parameters
    ----------
    datasets : `~gammapy.datasets.Datasets`
        The fitted Cash MapDatasets; those with an empty fit mask are skipped.
    plan : `~rtafast.fit.linear_models.LinearPlan`
        The free norms (sky and background) and the components each one scales.

    Returns
    -------
    DatasetArrays
        The fit-mask bins of all datasets concatenated: counts, fixed prediction (counts)
        and one template per free norm (counts per unit norm).

    Raises
    ------
    UnsupportedDatasetError
        For datasets other than Cash MapDatasets.
    ValueError
        For mismatched geometries, NaN inside the mask, an empty mask, no counts
        in the mask, or a free component that predicts no counts in it.
    """
    counts, fixed, templates = [], [], []
    for dataset in datasets:
        check_dataset(dataset)
        mask = fit_mask(dataset)
        if not mask.any():
            continue
        counts.append(_masked_finite(dataset, "counts", dataset.counts.data, mask))
        if dataset.background is not None:
            _masked_finite(dataset, "background", dataset.background.data, mask)
        fixed_b, fixed_s, templates_b, templates_s = model_arrays(dataset, plan, mask)
        fixed.append(fixed_b + fixed_s)
        templates.append(templates_b + templates_s)

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
    check_templates(arrays.templates, plan)
    return arrays


def check_templates(templates, plan):
    """Raise ValueError when a free norm's templates predict no counts (shape (K, N))."""
    empty = ~(templates != 0).any(axis=1)
    if empty.any():
        names = [plan.parameters[i].name for i in np.flatnonzero(empty)]
        raise ValueError(
            f"free parameter(s) {names} scale components that predict no counts inside the "
            "fit mask: their norm is undetermined"
        )
