"""Excess-map inputs of a stream window: per-second pointing inputs, scaled.

What `rtafast.estimators.ExcessMapEstimator` needs of a dataset besides its counts --
the energy groups and top-hat kernel, the estimator's mask, the background summed over
the groups and its correlation, the kernel-averaged exposure -- is linear in the live
time or on-time or does not depend on them. For a `rtafast.stream.StreamWindow` of one
observation :func:`pointing_excess_inputs` computes them once per pointing at 1 s (from
its ``stacked_unit``, with the dataset path's own functions) and
:func:`window_statistics` scales them by the window's on-time and live time; only the
counts are correlated per window (on the host: the counts come down from the backend,
the correlation is scipy's FFT as gammapy's).
"""

from typing import NamedTuple

import numpy as np
from gammapy.stats import CashCountsStatistic

from .convolution import convolve_images
from .excess_inputs import (
    convolve64,
    energy_grouping,
    estimator_mask,
    resample_sum,
)

__all__ = ["PointingExcessInputs", "pointing_excess_inputs", "window_statistics"]


class PointingExcessInputs(NamedTuple):
    """A pointing's excess-map inputs for one estimator (host arrays, per second).

    ``grouping`` (`rtafast.estimators.excess_inputs.EnergyGrouping`), ``mask`` (bool,
    the estimator's mask of the groups), ``background`` (``npred`` summed over the groups
    per s of on-time, float64), ``background_conv`` (its correlation within the mask,
    float64 before gammapy's float32 rounding), ``exposure`` (the cache entry of the
    kernel-averaged exposure per s of live time).
    """

    grouping: object
    mask: np.ndarray
    background: np.ndarray
    background_conv: np.ndarray
    exposure: object


def pointing_excess_inputs(estimator, pointing, cache):
    """The per-second excess inputs of a pointing (kept in the estimator's cache under the
    pointing's token, its spectral model and energy groups).

    Parameters
    ----------
    estimator : `rtafast.estimators.ExcessMapEstimator`
    pointing : `rtafast.stream.PointingMaps`
    cache : `rtafast.estimators.excess_inputs.ExcessInputCache`

    Returns
    -------
    PointingExcessInputs
    """
    unit = pointing.stacked_unit
    grouping = energy_grouping(estimator, unit)
    key = (
        "pointing inputs",
        pointing.token,
        repr(estimator.spectral_model.to_dict()),
        grouping.options,
    )
    return cache.unit(key, lambda: _compute_inputs(estimator, pointing, grouping, cache))


def _compute_inputs(estimator, pointing, grouping, cache):
    unit = pointing.stacked_unit
    exposure = cache.unit_inputs(estimator, pointing, grouping)
    weights = None if unit.mask_safe is None else unit.mask_safe.data
    mask = estimator_mask(unit, grouping)
    background = resample_sum(unit.npred().data, weights, grouping)
    kernel = grouping.kernel / grouping.kernel.max()
    background_conv = convolve64(background * mask, kernel)
    for array in (mask, background, background_conv):
        array.setflags(write=False)
    return PointingExcessInputs(grouping, mask, background, background_conv, exposure)


def window_statistics(inputs, window):
    """Cash statistics of a window's correlated counts, its background and exposure.

    Parameters
    ----------
    inputs : PointingExcessInputs
        Of the window's pointing.
    window : `rtafast.stream.StreamWindow`

    Returns
    -------
    stat : `gammapy.stats.CashCountsStatistic`
    background : ndarray, float64
        ``npred`` summed over the groups.
    exposure : ndarray, float32
        Kernel-averaged reconstructed-energy exposure.
    """
    grouping = inputs.grouping
    counts = window.backend.to_numpy(window.counts)  # already weighted by the safe mask
    counts = resample_sum(counts, None, grouping)
    kernel = grouping.kernel / grouping.kernel.max()
    n_on_conv = np.rint(convolve_images(counts * inputs.mask, kernel))
    background_conv = (inputs.background_conv * window.ontime).astype(np.float32)
    stat = CashCountsStatistic(n_on_conv, background_conv)
    exposure = inputs.exposure.scaled(window.livetime).exposure
    return stat, inputs.background * window.ontime, exposure
