"""Per-dataset arrays of the light curve's fast path, computed once per ``run``.

`LightCurveEstimator` fits one norm per time bin and energy bin. What a dataset
contributes to those fits does not depend on the bin: its counts, the source's
predicted counts at norm 1 (gammapy's evaluators, once per dataset), the fixed
part of the prediction (Cash: background + other models; WStat: off counts and
alpha), the fitted-bins mask and the time span gammapy's ``Datasets.select_time``
compares. :func:`dataset_arrays` computes them once; the time bins only select
and concatenate them (:mod:`.lightcurve_bins`).
"""

from dataclasses import dataclass

import numpy as np
from astropy.time import Time
from gammapy.datasets import MapDataset, MapDatasetOnOff, SpectrumDataset, SpectrumDatasetOnOff

__all__ = [
    "CASH_CLASSES",
    "WSTAT_CLASSES",
    "DatasetArrays",
    "UnsupportedInputError",
    "check_datasets",
    "dataset_arrays",
    "energy_slices",
    "seconds_since",
    "time_array",
]

#: Dataset classes fitted with the Cash statistic on the fast path (exactly these).
CASH_CLASSES = (MapDataset, SpectrumDataset)
#: Dataset classes fitted with WStat (background profiled) on the fast path.
WSTAT_CLASSES = (MapDatasetOnOff, SpectrumDatasetOnOff)


class UnsupportedInputError(ValueError):
    """The fast path does not apply; ``reason`` is the delegation code, ``detail`` why."""

    def __init__(self, reason, detail):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class DatasetArrays:
    """What one dataset contributes to every fit of the light curve.

    Arrays are ``(n_energy, n_bins_per_energy)`` float64 (reco energy first, the
    spatial bins flattened), as gammapy's maps hold them.

    Attributes
    ----------
    name : str
        The dataset's name (the light curve's ``dataset`` axis label).
    counts : numpy.ndarray
        Counts.
    signal : numpy.ndarray
        Source's predicted counts at norm 1 (counts).
    fixed : numpy.ndarray or None
        Cash: predicted counts of the background and the other models (counts).
    counts_off, alpha : numpy.ndarray or None
        WStat: off counts and the on/off exposure ratio ``alpha``.
    mask : numpy.ndarray
        Fitted bins (``mask_safe & mask_fit``), bool.
    dataset : gammapy.datasets.Dataset
        The dataset itself (the light curve's ``gti``).
    """

    name: str
    counts: np.ndarray
    signal: np.ndarray
    fixed: np.ndarray | None
    counts_off: np.ndarray | None
    alpha: np.ndarray | None
    mask: np.ndarray
    dataset: object

    @property
    def is_wstat(self):
        """True for on/off datasets (WStat)."""
        return self.counts_off is not None


def seconds_since(times, reference):
    """TT seconds from ``reference`` to ``times`` (astropy ``Time``), float64.

    Differences are taken in the two-double Julian dates before the product by
    86400 s, so times within days of ``reference`` keep ~1e-10 s.
    """
    times, reference = times.tt, reference.tt
    days = (times.jd1 - reference.jd1) + (times.jd2 - reference.jd2)
    return np.asarray(days, dtype=float) * 86400.0


def time_array(times):
    """One ``Time`` array of a list of scalar ``Time`` objects (each kept in its scale).

    Built from the scalars' two-double Julian dates, grouped by time scale (exact, and
    ~50x faster than ``Time(list)`` for a hundred datasets).
    """
    jd1, jd2 = np.empty(len(times)), np.empty(len(times))
    scales = {}
    for i, time in enumerate(times):
        scales.setdefault(time.scale, []).append(i)
    for scale, index in scales.items():
        group = Time(
            [times[i].jd1 for i in index], [times[i].jd2 for i in index], format="jd", scale=scale
        ).tt
        jd1[index], jd2[index] = group.jd1, group.jd2
    return Time(jd1, jd2, format="jd", scale="tt")


def _flat(data):
    data = np.asarray(data)
    return data.reshape(data.shape[0], -1)


def _source_in(dataset, source_name):
    models = dataset.models
    return models is not None and source_name in models.names


def _fixed_cash(dataset, source_name):
    """Background + the other models' predicted counts of a Cash dataset."""
    fixed = np.zeros(dataset._geom.data_shape)
    background = dataset.npred_background()
    if background is not None:
        fixed += background.data
    others = [m.name for m in (dataset.models or []) if m.name != source_name]
    others = [name for name in others if name in dataset.evaluators]
    if others:
        fixed += dataset.npred_signal(model_names=others).data
    return fixed


def _check_onoff_signal(dataset, source_name):
    others = [name for name in dataset.evaluators if name != source_name]
    if others:
        raise UnsupportedInputError(
            "lightcurve-onoff-other-models",
            f"on/off dataset {dataset.name!r} has other sky models ({', '.join(others)}): "
            "WStat with a fixed signal part is not on the fast path",
        )


def check_datasets(datasets):
    """Raise `UnsupportedInputError` for datasets the fast path does not handle."""
    for dataset in datasets:
        kind = type(dataset)
        if kind not in CASH_CLASSES + WSTAT_CLASSES:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset",
                f"dataset {dataset.name!r} is a {kind.__name__}",
            )
        expected = "wstat" if kind in WSTAT_CLASSES else "cash"
        if dataset.stat_type != expected:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset",
                f"dataset {dataset.name!r} ({kind.__name__}) has stat_type {dataset.stat_type!r}",
            )
        if dataset.counts is None:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset", f"dataset {dataset.name!r} has no counts"
            )
        if kind in WSTAT_CLASSES and dataset.counts_off is None:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset",
                f"on/off dataset {dataset.name!r} has no counts_off",
            )
        mask = dataset.mask
        if mask is not None and mask.data.dtype != bool:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset",
                f"dataset {dataset.name!r} has a {mask.data.dtype} (weighted) mask",
            )
        if dataset.gti is None or len(dataset.gti.table) == 0:
            raise UnsupportedInputError(
                "lightcurve-unsupported-dataset", f"dataset {dataset.name!r} has no GTI"
            )


def dataset_arrays(dataset, source_name):
    """`DatasetArrays` of one dataset (its models as attached; the source at norm 1).

    Parameters
    ----------
    dataset : gammapy.datasets.MapDataset or MapDatasetOnOff
        A dataset accepted by :func:`check_datasets`.
    source_name : str
        Name of the source model whose norm the light curve fits.
    """
    counts = _flat(dataset.counts.data).astype(float)
    if _source_in(dataset, source_name):
        signal = _flat(dataset.npred_signal(model_names=[source_name]).data)
    else:
        signal = np.zeros_like(counts)
    mask = dataset.mask
    mask = np.ones(counts.shape, bool) if mask is None else _flat(mask.data)
    fixed = counts_off = alpha = None
    if type(dataset) in WSTAT_CLASSES:
        _check_onoff_signal(dataset, source_name)
        counts_off = _flat(dataset.counts_off.data).astype(float)
        alpha = _flat(dataset.alpha.data).astype(float)
    else:
        fixed = _flat(_fixed_cash(dataset, source_name))
    return DatasetArrays(
        name=dataset.name,
        counts=counts,
        signal=signal,
        fixed=fixed,
        counts_off=counts_off,
        alpha=alpha,
        mask=mask,
        dataset=dataset,
    )


def energy_slices(energy_axis, energy_edges):
    """Reco-energy index ranges of gammapy's ``slice_by_energy`` for each energy bin.

    Parameters
    ----------
    energy_axis : gammapy.maps.MapAxis
        The datasets' (aligned) reconstructed energy axis.
    energy_edges : astropy.units.Quantity
        The estimator's ``energy_edges``.

    Returns
    -------
    list of slice or None
        One per energy bin: the ``slice`` of reco-energy bins gammapy keeps, or
        None where no bin of the axis is inside (gammapy's NaN result).
    """
    slices = []
    for energy_min, energy_max in zip(energy_edges[:-1], energy_edges[1:], strict=True):
        try:
            group = energy_axis.group_table(edges=[energy_min, energy_max])
        except ValueError:  # gammapy's slice_by_energy: the dataset does not contribute
            group = []
        else:
            group = group[group["bin_type"] == "normal   "]
        if len(group) == 0:
            slices.append(None)
        else:
            slices.append(slice(int(group["idx_min"][0]), int(group["idx_max"][0]) + 1))
    return slices
