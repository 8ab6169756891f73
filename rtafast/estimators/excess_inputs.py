"""Inputs of the excess map on arrays: energy groups, top-hat kernel, cached exposure.

gammapy 2.1's ``ExcessMapEstimator.run`` resamples the dataset to the estimator's
energy axis (``MapDataset.resample_energy_axis``: counts and ``npred()`` summed
over each group of reconstructed-energy bins with the safe mask as weights, the
safe and fit masks reduced with ``logical_or``), then divides the correlated excess
by the kernel-averaged exposure in reconstructed energy,
``conv(E) / conv(mask)``, with ``E`` the spectral model's predicted counts
(``estimate_exposure_reco_energy(normalize=False)``) summed over the groups like
the counts. This module does the same on plain arrays:

* :func:`energy_grouping` -- the output geometry, the ``reduceat`` indices of the
  groups and the top-hat kernel, memoised per counts geometry and estimator
  options (gammapy's own ``_get_energy_axis``, ``Geom.resample_axis`` and
  ``estimate_kernel`` compute them on a miss);
* :func:`resample_sum` / :func:`resample_or` -- ``Map.resample_axis`` on arrays
  (same padding, ``reduceat`` and summation order, so the same numbers);
* :func:`resample_on_off` -- the off counts, acceptances and ``alpha`` of
  ``MapDatasetOnOff.resample_energy_axis`` on arrays;
* :class:`ExcessInputCache` -- the kernel-averaged reconstructed-energy exposure
  (EDisp kernel, ``MapEvaluator`` and two convolutions, ~8 ms on the H.E.S.S. Crab
  map), kept with copies of the IRF arrays and masks it came from. Like
  `rtafast.estimators.ts_inputs.TSInputCache` (both are
  `rtafast.cache.irf_match.RescalingCache`), an entry is reused when the new
  IRF arrays are a multiple of its copies
  (the exposure and the IRFs' exposure maps by any positive factor, the PSF and
  EDisp maps unchanged) and, here, the safe and fit masks are equal, bin by bin:
  ``E`` is linear in the exposure map, so its convolution (kept in float64,
  before gammapy's float32 rounding) is multiplied by the exposure's factor. That
  is every window after the first of a real-time stream on one pointing.
"""

from typing import NamedTuple

import astropy.units as u
import numpy as np
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.estimators.utils import estimate_exposure_reco_energy

from rtafast.cache.lru import LRUCache

from ..cache.irf_match import RescalingCache, copies, geom_keys, irf_arrays, irf_geoms
from .convolution import convolve_images

__all__ = [
    "EnergyGrouping",
    "ExcessInputCache",
    "default_cache",
    "energy_grouping",
    "resample_sum",
    "resample_or",
    "estimator_mask",
    "OnOffMaps",
    "resample_on_off",
    "convolve64",
]


class EnergyGrouping(NamedTuple):
    """How one estimator groups one counts geometry (see :func:`energy_grouping`)."""

    #: Output geometry (gammapy's ``counts.geom.resample_axis(axis)``).
    geom: object
    #: Start of each group along the energy axis, for ``reduceat`` on the padded cube.
    indices: np.ndarray
    #: Top-hat kernel (unit sum), gammapy's ``estimate_kernel(dataset).data``.
    kernel: np.ndarray
    #: Key of the grouping options (energy edges, ``sum_over_energy_groups``, radius).
    options: tuple
    #: Shape of the output maps, ``(n_groups, ny, nx)``.
    shape: tuple
    #: When every group is one energy bin (``reduceat`` then copies planes): the first
    #: of them (the groups are the planes ``single_start + i``); otherwise None.
    single_start: object = None


def _edges_key(energy_edges):
    if energy_edges is None:
        return None
    edges = u.Quantity(energy_edges)
    return (np.asarray(edges.value, dtype=np.float64).tobytes(), str(edges.unit))


def _options_key(estimator):
    return (
        _edges_key(estimator.energy_edges),
        bool(getattr(estimator, "sum_over_energy_groups", False)),
        float(estimator.correlation_radius.deg),
    )


def _compute_grouping(estimator, dataset, options):
    geom_in = dataset.counts.geom
    axis = estimator._get_energy_axis(dataset)
    geom = geom_in.resample_axis(axis)
    # gammapy's ``Map.resample_axis``: ``np.digitize`` of the new edges
    edges = geom.axes[axis.name].edges.value
    indices = np.digitize(edges, geom_in.axes[axis.name].edges.value) - 1
    kernel = GammapyExcessMapEstimator.estimate_kernel(estimator, dataset).data
    kernel = np.array(kernel, dtype=np.float64)
    indices.setflags(write=False)
    kernel.setflags(write=False)
    shape = tuple(int(n) for n in geom.data_shape)
    single = indices[0] >= 0 and len(indices) == shape[0] + 1 and np.all(np.diff(indices) == 1)
    single_start = int(indices[0]) if single else None
    return EnergyGrouping(geom, indices, kernel, options, shape, single_start)


_groupings = LRUCache(maxsize=32)


def energy_grouping(estimator, dataset):
    """Energy groups, output geometry and kernel of an estimator on a dataset (memoised).

    Parameters
    ----------
    estimator : `gammapy.estimators.ExcessMapEstimator`
        Carries ``energy_edges``, ``sum_over_energy_groups`` and ``correlation_radius``.
    dataset : `gammapy.datasets.MapDataset`
        Its counts geometry (WCS, one ``energy`` axis) is grouped.

    Returns
    -------
    `EnergyGrouping`
        Shared between calls: read-only arrays, a geometry not to be edited.
    """
    options = _options_key(estimator)
    key = (geom_keys(dataset.counts.geom), options)
    return _groupings.get_or_compute(key, lambda: _compute_grouping(estimator, dataset, options))


def _padded(data, weights):
    """``data * weights`` with one zero plane appended along axis 0 (float64 or bool)."""
    n = data.shape[0]
    dtype = bool if data.dtype == bool else np.float64
    padded = np.zeros((n + 1,) + data.shape[1:], dtype=dtype)
    if weights is None:
        padded[:n] = data
    else:
        np.multiply(data, weights, out=padded[:n])
    return padded


def resample_sum(data, weights, grouping):
    """Sum image planes over the energy groups, as gammapy's ``Map.resample_axis``.

    Parameters
    ----------
    data : ndarray, shape (n_energy, ny, nx)
    weights : ndarray of bool, same shape, or None
        The safe mask (None: all bins count).
    grouping : `EnergyGrouping`

    Returns
    -------
    ndarray, float64, shape (n_groups, ny, nx)
    """
    n_out = grouping.shape[0]
    if grouping.single_start is not None:
        return _planes(data, weights, grouping)
    return np.add.reduceat(_padded(data, weights), grouping.indices, axis=0)[:n_out]


def _planes(data, weights, grouping):
    """``reduceat`` over groups of one bin each: ``data * weights`` of their planes."""
    planes = slice(grouping.single_start, grouping.single_start + grouping.shape[0])
    dtype = bool if data.dtype == bool else np.float64
    out = np.empty(grouping.shape, dtype=dtype)
    if weights is None:
        out[...] = data[planes]
    else:
        np.multiply(data[planes], weights[planes], out=out)
    return out


def resample_or(mask, grouping):
    """Reduce a boolean mask over the energy groups with ``logical_or`` (as gammapy).

    Parameters
    ----------
    mask : ndarray of bool, shape (n_energy, ny, nx)
    grouping : `EnergyGrouping`

    Returns
    -------
    ndarray of bool, shape (n_groups, ny, nx)
    """
    n_out = grouping.shape[0]
    mask = np.asarray(mask, dtype=bool)
    if grouping.single_start is not None:
        return _planes(mask, None, grouping)
    return np.logical_or.reduceat(_padded(mask, None), grouping.indices, axis=0)[:n_out]


def estimator_mask(dataset, grouping):
    """gammapy's ``estimate_mask_default`` of the resampled dataset, on arrays.

    The fit mask (if any) and the safe mask are each reduced over the groups with
    ``logical_or``, then combined with ``&`` (``MapDataset.mask``).

    Parameters
    ----------
    dataset : `gammapy.datasets.MapDataset`
    grouping : `EnergyGrouping`

    Returns
    -------
    ndarray of bool, shape (n_groups, ny, nx)
    """
    safe, fit = _masks(dataset)
    safe = None if safe is None else resample_or(safe, grouping)
    fit = None if fit is None else resample_or(fit, grouping)
    if fit is not None:
        return fit if safe is None else fit & safe
    if safe is not None:
        return safe
    return np.ones(grouping.shape, dtype=bool)


class OnOffMaps(NamedTuple):
    """The on/off maps of gammapy's resampled ``MapDatasetOnOff`` (see :func:`resample_on_off`).

    All float64, shape ``(n_groups, ny, nx)``.
    """

    #: ``counts_off`` summed over the groups (safe mask as weights).
    counts_off: np.ndarray
    #: ``acceptance`` summed over the groups (safe mask as weights).
    acceptance: np.ndarray
    #: ``acceptance * counts_off / background`` of the sums (inf or NaN where the
    #: summed background ``alpha * counts_off`` is 0).
    acceptance_off: np.ndarray
    #: ``nan_to_num(acceptance / acceptance_off)`` (the resampled dataset's ``alpha``).
    alpha: np.ndarray
    #: ``alpha * counts_off`` (the resampled dataset's ``background``).
    background: np.ndarray


def resample_on_off(dataset, grouping):
    """``MapDatasetOnOff.resample_energy_axis``'s off maps, on arrays (same numbers).

    gammapy sums ``counts_off``, ``acceptance`` and the background
    ``alpha * counts_off`` over each group with the safe mask as weights and sets
    the new ``acceptance_off`` so that the summed background is kept:
    ``acceptance * counts_off / background``. The same operations, in the same
    order and dtypes, on the arrays.

    Parameters
    ----------
    dataset : `gammapy.datasets.MapDatasetOnOff`
        With ``counts_off``, ``acceptance`` and ``acceptance_off`` (dimensionless).
    grouping : `EnergyGrouping`

    Returns
    -------
    `OnOffMaps`
    """
    weights = _masks(dataset)[0]
    # (inf * 0 where acceptance_off is 0: NaN, as gammapy's, without its warnings)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        counts_off = resample_sum(dataset.counts_off.data, weights, grouping)
        acceptance = resample_sum(dataset.acceptance.data, weights, grouping)
        norm_factor = resample_sum(_background(dataset), weights, grouping)
        acceptance_off = acceptance * counts_off / norm_factor
        alpha = np.nan_to_num(acceptance / acceptance_off)
        background = alpha * counts_off
    return OnOffMaps(counts_off, acceptance, acceptance_off, alpha, background)


def _background(dataset):
    """gammapy's ``MapDatasetOnOff.background`` data (``alpha * counts_off``), on arrays.

    The same operations as gammapy's ``alpha`` and ``Map.__mul__`` (dimensionless maps,
    each data array of the geometry's shape), without three Map constructions and
    copies (~1.5 ms on a 250 x 250 image).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.nan_to_num(
            np.true_divide(dataset.acceptance.quantity, dataset.acceptance_off.quantity).value
        )
    return alpha * dataset.counts_off.data


def _masks(dataset):
    safe = None if dataset.mask_safe is None else dataset.mask_safe.data
    fit = None if dataset.mask_fit is None else dataset.mask_fit.data
    return safe, fit


def convolve64(planes, kernel):
    """``convolve_images`` before its float32 rounding (float64 planes)."""
    return convolve_images(planes, kernel, dtype=np.float64)


class _ExcessInputs(NamedTuple):
    #: ``conv(E)`` of the resampled reconstructed-energy exposure, float64 (unrounded).
    exposure_conv: np.ndarray
    #: ``conv(mask)``, float32 (gammapy's).
    mask_conv: np.ndarray
    #: ``float32(exposure_conv) / mask_conv``: gammapy's kernel-averaged exposure.
    exposure: np.ndarray
    #: Unit of the exposure (of ``estimate_exposure_reco_energy``'s map).
    unit: object
    #: Copies of the IRF arrays (:func:`rtafast.cache.irf_match.irf_arrays`).
    arrays: tuple
    #: Copies of the safe and fit masks (or None).
    masks: tuple

    def scaled(self, factor):
        """The inputs of an exposure ``factor`` times this one (``conv(E)`` is linear)."""
        exposure_conv = self.exposure_conv * factor
        return self._replace(
            exposure_conv=exposure_conv, exposure=_averaged(exposure_conv, self.mask_conv)
        )


def _same_masks(masks, references):
    for mask, reference in zip(masks, references, strict=True):
        if mask is None or reference is None:
            if mask is not reference:
                return False
        elif mask.shape != reference.shape or not np.array_equal(mask, reference):
            return False
    return True


def _averaged(exposure_conv, mask_conv):
    with np.errstate(invalid="ignore", divide="ignore"):
        return exposure_conv.astype(np.float32) / mask_conv


class ExcessInputCache(RescalingCache):
    """Least-recently-used cache of kernel-averaged reconstructed-energy exposures.

    An entry is reused for a dataset of the same layout (IRF map geometries and
    units, counts geometry, spectral model, energy groups and correlation radius)
    whose safe and fit masks equal the entry's and whose IRF arrays are a multiple
    of the entry's (see the module's notes): ``hits`` counts reuses, ``rescaled``
    those of them with an exposure factor other than 1, ``misses`` the entries
    computed.

    Parameters
    ----------
    maxsize : int
        Number of entries kept (each holds a copy of its IRF arrays and masks).
    """

    def __init__(self, maxsize=16):
        super().__init__(maxsize)

    def get(self, estimator, dataset, grouping):
        """The kernel-averaged exposure of a dataset, as gammapy's estimator computes it.

        Parameters
        ----------
        estimator : `gammapy.estimators.ExcessMapEstimator`
            Its ``spectral_model`` weights the true energies.
        dataset : `gammapy.datasets.MapDataset`
            With an exposure.
        grouping : `EnergyGrouping`
            Of the estimator on the dataset (:func:`energy_grouping`).

        Returns
        -------
        exposure : ndarray, float32, shape (n_groups, ny, nx)
            ``conv(E) / conv(mask)`` (read-only when shared with the cache).
        unit : `astropy.units.Unit`
            Its unit (gammapy's: dimensionless, predicted counts per unit norm).
        """
        arrays = irf_arrays(dataset)
        masks = _masks(dataset)
        layout = (
            irf_geoms(dataset),
            geom_keys(dataset.counts.geom),
            repr(estimator.spectral_model.to_dict()),
            grouping.options,
        )
        entry, factor = self.find(layout, arrays, lambda e: _same_masks(masks, e.masks))
        if entry is None:
            entry = self._compute(estimator, dataset, grouping, arrays, masks)
            self.add(layout, entry)
            factor = 1.0
        entry = self.scale(entry, factor)
        return entry.exposure, entry.unit

    def unit_inputs(self, estimator, pointing, grouping):
        """The kernel-averaged exposure inputs of a stream pointing, per second of live
        time (computed once from its ``stacked_unit``; scale them with ``scaled``).

        Parameters
        ----------
        estimator : `gammapy.estimators.ExcessMapEstimator`
        pointing : `rtafast.stream.PointingMaps`
        grouping : `EnergyGrouping`
            Of the estimator on the pointing's dataset.

        Returns
        -------
        entry
            With ``exposure_conv``, ``mask_conv``, ``exposure`` and ``unit``.
        """
        key = (
            "pointing",
            pointing.token,
            repr(estimator.spectral_model.to_dict()),
            grouping.options,
        )
        unit = pointing.stacked_unit
        return self.unit(key, lambda: self._compute(estimator, unit, grouping, (), _masks(unit)))

    @staticmethod
    def _compute(estimator, dataset, grouping, arrays, masks):
        reco = estimate_exposure_reco_energy(dataset, estimator.spectral_model, normalize=False)
        exposure = resample_sum(reco.data, masks[0], grouping)
        exposure_conv = convolve64(exposure, grouping.kernel)
        mask_conv = convolve_images(estimator_mask(dataset, grouping), grouping.kernel)
        averaged = _averaged(exposure_conv, mask_conv)
        for array in (exposure_conv, mask_conv, averaged):
            array.setflags(write=False)
        return _ExcessInputs(
            exposure_conv, mask_conv, averaged, reco.unit, copies(arrays), copies(masks)
        )


#: The process-wide cache of :class:`rtafast.estimators.ExcessMapEstimator`.
default_cache = ExcessInputCache()
