"""TS-scan inputs of a stream window, built where its counts are.

A :class:`rtafast.stream.StreamWindow` of one observation carries its counts on the
backend, the observation's per-second IRF maps and its live time and on-time. What
the TS scan needs besides the counts -- the kernel table, the kernel row of each
bin, the masked background and source exposure (padded by half a kernel), the
fitted pixels -- depends only on the pointing, the estimator's options and the
time: :func:`pointing_layers` computes it once per pointing at 1 s of live time and
on-time (the kernel and reconstructed-energy exposures of
:mod:`rtafast.estimators.ts_kernel`, gammapy's conventions of
:mod:`rtafast.estimators.ts_inputs`) and uploads it to the backend, kept in the
estimator's :class:`~rtafast.estimators.ts_inputs.TSInputCache` under the pointing's
token. :func:`window_scan_inputs` then scales it by the window's live time and
on-time and masks and pads the window's counts on the backend: on ``"cuda"``
nothing goes to the host but the scan's results (:func:`rtafast_kernels.tsmap.
inputs.scan_tables` builds its tables on the device).

The maps equal ``run(window.to_dataset())``'s up to rounding: the dataset's maps are
the same per-second maps scaled in float32, and a rescaled dataset finds its
exposure's factor from its arrays (:mod:`rtafast.cache.irf_match`) where the window
carries it.
"""

from typing import NamedTuple

import numpy as np

from rtafast_kernels.tsmap.inputs import TSScanInputs

from .ts_inputs import default_mask, model_key, scan_layers
from .ts_kernel import reco_exposures

__all__ = ["PointingLayers", "pointing_layers", "window_scan_inputs", "window_fallback"]


class PointingLayers(NamedTuple):
    """A pointing's TS-scan layers per second, on the backend (see the module's notes).

    Backend arrays: ``mask`` (bool, ``(n_energy, ny, nx)``: the bins used),
    ``background`` (per s of on-time) and ``expo`` (per s of live time), float64,
    ``(L, ny + ky - 1, nx + kx - 1)``, ``kidx`` (int32, same shape), ``ktab``
    (float64, ``(nK, ky, kx)``), ``pix_y``, ``pix_x`` (int64) and ``guess`` (zeros)
    of the fitted pixels. Host: ``positions`` (``(y, x)`` of the fitted pixels),
    ``kernel`` (the kernel Map), ``sum_over_energy_groups``.
    """

    mask: object
    background: object
    expo: object
    kidx: object
    ktab: object
    pix_y: object
    pix_x: object
    guess: object
    positions: tuple
    kernel: object
    sum_over_energy_groups: bool


def window_fallback(estimator, window):
    """Why a window's TS map is computed on ``window.to_dataset()``, or None.

    Several observations in the window (their stack's kernel weighs their PSFs by
    live time), models on the window (they add to the background), a threshold
    (gammapy's initial flux map is made from the dataset), downsampling or energy
    groups, and the selections gammapy's loop computes.
    """
    if window.pointing is None:
        return "several observations"
    if window.models is not None:
        return "models"
    if estimator.threshold is not None:
        return "threshold"
    if estimator.downsampling_factor not in (None, 1) or estimator.energy_edges is not None:
        return "downsampling or energy groups"
    if set(estimator.selection_optional or ()) & {"stat_scan", "sensitivity"}:
        return "selection"
    return None


def pointing_layers(estimator, pointing, cache, backend):
    """The per-second scan layers of a pointing for an estimator (cached).

    Parameters
    ----------
    estimator : `rtafast.estimators.TSMapEstimator`
        Kernel model and width, ``sum_over_energy_groups``.
    pointing : `rtafast.stream.PointingMaps`
        With its ``stacked_unit`` made.
    cache : `rtafast.estimators.ts_inputs.TSInputCache`
        Keeps the layers under the pointing's token, the estimator's options and the
        backend (a hit or a miss of the cache).
    backend : backend object

    Returns
    -------
    PointingLayers
    """
    width = None if estimator.kernel_width is None else str(estimator.kernel_width)
    key = (
        "pointing",
        pointing.token,
        model_key(estimator.kernel_model),
        width,
        bool(estimator.sum_over_energy_groups),
        backend.name,
    )
    return cache.unit(key, lambda: _compute_layers(estimator, pointing.stacked_unit, backend))


def _compute_layers(estimator, unit, backend):
    """:class:`PointingLayers` of a dataset at 1 s (no counts), uploaded."""
    kernel = estimator._compute_kernel(unit)
    exposure_npred = reco_exposures(unit, estimator.kernel_model.spectral_model)[1]
    npred = unit.npred().data
    mask = default_mask(unit, npred)
    summed = bool(estimator.sum_over_energy_groups)
    _, background, expo, kidx, ktab, mask_2d = scan_layers(
        None, np.where(mask, npred, 0.0), exposure_npred.data * mask, kernel, mask, summed
    )
    ky, kx = ktab.shape[1:]
    pad = ((0, 0), (ky // 2, ky // 2), (kx // 2, kx // 2))
    y, x = np.nonzero(mask_2d)
    upload = backend.upload
    return PointingLayers(
        mask=upload(mask, bool),
        background=upload(np.pad(background.astype(np.float64), pad)),
        expo=upload(np.pad(expo.astype(np.float64), pad)),
        kidx=upload(np.pad(kidx.astype(np.int32), pad)),
        ktab=upload(ktab, np.float64),
        pix_y=upload(y, np.int64),
        pix_x=upload(x, np.int64),
        guess=backend.xp.zeros(y.size),
        positions=(y, x),
        kernel=kernel,
        sum_over_energy_groups=summed,
    )


def window_scan_inputs(layers, window, **options):
    """TS-scan inputs of a window: the pointing's layers scaled by its live time and
    on-time, its counts masked and padded, all on the window's backend.

    Parameters
    ----------
    layers : PointingLayers
        Of the window's pointing, on the window's backend.
    window : `rtafast.stream.StreamWindow`
    **options
        ``threshold``, ``use_threshold``, ``n_sigma``, ``n_sigma_ul``, ``rtol``,
        ``max_niter``, ``want_errs``, ``want_ul`` of ``TSScanInputs``.

    Returns
    -------
    `rtafast_kernels.tsmap.inputs.TSScanInputs`
        Arrays of the backend's array module.
    """
    xp = window.backend.xp
    counts = window.counts * layers.mask
    if layers.sum_over_energy_groups:
        counts = counts.sum(axis=0, keepdims=True)
    padded = xp.zeros(layers.background.shape)
    ky, kx = layers.ktab.shape[1:]
    ny, nx = counts.shape[1:]
    padded[:, ky // 2 : ky // 2 + ny, kx // 2 : kx // 2 + nx] = counts
    return TSScanInputs(
        counts=padded,
        background=layers.background * window.ontime,
        expo=layers.expo * window.livetime,
        kidx=layers.kidx,
        ktab=layers.ktab,
        pix_y=layers.pix_y,
        pix_x=layers.pix_x,
        guess=layers.guess,
        xp=xp,
        **options,
    )
