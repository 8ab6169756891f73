"""Input arrays of the TS scan, built from gammapy datasets (with a content-keyed cache).

The per-pixel conventions are gammapy 2.1's ``TSMapEstimator.estimate_fit_input_maps``
and ``SimpleMapDataset.from_arrays``: counts and predicted background times the
mask; the source model of a bin is the kernel (normalised per energy) times the
exposure in reconstructed energy (``estimate_exposure_reco_energy``, not
normalised) times the mask; with ``sum_over_energy_groups`` the energy bins are
summed and the kernel of each bin is the mask-weighted mean of the energy
kernels, which depends on which energies are unmasked at that bin: each distinct
mask pattern gets one row of the kernel table (a handful in practice). Masks of
any dtype are used where they are non-zero (gammapy's ``&=`` is a logical and).
Datasets whose kernels differ in shape (a joint map of datasets with different
pixel rounding or PSFs) have their kernels zero-padded to the largest footprint;
the constant terms of the bins this adds to a smaller footprint are subtracted
from ``stat``, ``stat_null`` and ``npred`` (gammapy sums each dataset over its own
footprint).

The kernel (PSF/EDisp convolution of the kernel model) and the two
reconstructed-energy exposures are computed from the IRF arrays
(:mod:`rtafast.estimators.ts_kernel`: ~30 ms and ~5 ms on the H.E.S.S. Crab map,
gammapy's functions take ~0.4 s and ~0.1 s) and depend only on the IRF maps, the
mask, the geometry and the kernel model. :class:`TSInputCache` keeps them with copies of the
IRF arrays they were computed from, and reuses an entry when the new IRF arrays
are a multiple of its copies: the kernel unchanged (gammapy normalises it per
energy bin, so it does not depend on the exposure's scale), the two exposures
(linear in the exposure map) times the exposure's factor -- 1 for repeated maps of
the same dataset. Real-time analysis maps window after window of one pointing:
the exposure grows with the live time, the IRF maps do not change, so the kernel is
computed once per pointing (:mod:`rtafast.cache.irf_match`). "Multiple"
means within ``PROPORTIONAL_RTOL`` (1e-12) of the largest value, element by
element (or 8 rounding units of float32 maps): the exposure by any positive
factor, the PSF's and EDisp's exposure maps (stacking weights, unused here) by any
factor, the PSF and EDisp maps and the mask unchanged.
The comparison (~0.5 ms for the H.E.S.S. Crab map's ~1.5 MB of IRF maps, ~2.5 ms
for a 250x250 map's ~8 MB) runs at every call, the small arrays first; only the
WCS header string of a geometry object (``geom_key``) and its squashed output
geometry are memoised per object, checked against a fingerprint of its WCS
parameters, shape and axes.

gammapy's initial flux map (kernel-correlated excess, ~2 ms) is only computed
with a threshold, which it decides; rtafast's fits do not start from it.

A stream window (`rtafast.stream.StreamWindow`) carries its live time: its inputs
are not matched but looked up by its pointing and scaled
(:mod:`rtafast.estimators.ts_window`, entries of the same cache).
"""

from typing import NamedTuple

import astropy.units as u
import numpy as np

from rtafast_kernels.cash.element import TRUNCATION_VALUE
from rtafast_kernels.tsmap.inputs import TSScanInputs

from ..cache.irf_match import GeomMemo, RescalingCache, copies, geom_keys, irf_arrays, irf_geoms
from ..cache.scaling import scaled_map
from .convolution import convolve_images
from .ts_kernel import reco_exposures

__all__ = [
    "TSInputCache",
    "default_cache",
    "build_scan_inputs",
    "scan_layers",
    "squashed_geom",
    "default_mask",
    "model_key",
]

#: The image geometry of the output maps of a dataset geometry (energy axis squashed).
squashed_geom = GeomMemo(lambda geom: geom.squash(axis_name="energy"))


def model_key(model):
    parts = [type(model.spatial_model).__name__, type(model.spectral_model).__name__]
    parts += [(p.name, float(p.value), str(p.unit)) for p in model.parameters]
    frame = getattr(model.spatial_model, "frame", None)
    return (tuple(parts), frame)


class TSInputCache(RescalingCache):
    """Least-recently-used cache of TS kernels and reconstructed-energy exposures.

    An entry is reused for a dataset of the same layout (IRF map geometries, counts
    geometry, kernel model and width) whose IRF arrays are a multiple of the
    entry's (see :class:`rtafast.cache.irf_match.RescalingCache`): ``hits``
    counts reuses, ``rescaled`` those of them with an exposure factor other than 1,
    ``misses`` the entries computed. A stream pointing's per-second scan layers
    (:func:`rtafast.estimators.ts_window.pointing_layers`) are entries too, looked
    up by key (a hit or a miss each).

    Parameters
    ----------
    maxsize : int
        Number of entries kept (each holds a copy of its IRF arrays).
    """

    def __init__(self, maxsize=16):
        super().__init__(maxsize)

    def get(self, helper, dataset):
        """Return ``(kernel, exposure_normalised, exposure_npred)`` Maps for a dataset.

        Parameters
        ----------
        helper : `rtafast.estimators.TSMapEstimator`
            Carries the kernel model and width (its ``_compute_kernel``,
            :func:`rtafast.estimators.ts_kernel.estimate_kernel`, runs on a miss).
        dataset : `gammapy.datasets.MapDataset`
        """
        arrays = irf_arrays(dataset)
        layout = (
            irf_geoms(dataset),
            geom_keys(dataset.counts.geom),
            model_key(helper.kernel_model),
            None if helper.kernel_width is None else str(helper.kernel_width),
        )
        entry, factor = self.find(layout, arrays)
        if entry is None:
            exposure, exposure_npred = reco_exposures(dataset, helper.kernel_model.spectral_model)
            entry = _TSInputs(
                helper._compute_kernel(dataset), exposure, exposure_npred, copies(arrays)
            )
            self.add(layout, entry)
            factor = 1.0
        entry = self.scale(entry, factor)
        return entry.kernel, entry.exposure, entry.exposure_npred


class _TSInputs(NamedTuple):
    kernel: object
    exposure: object
    exposure_npred: object
    #: Copies of the IRF arrays the entry was computed from
    #: (:func:`rtafast.cache.irf_match.irf_arrays`).
    arrays: tuple

    def scaled(self, factor):
        """The inputs of IRF maps ``factor`` times these: the kernel as it is (normalised
        per energy), the exposures times ``factor``."""
        return self._replace(
            exposure=scaled_map(self.exposure, factor),
            exposure_npred=scaled_map(self.exposure_npred, factor),
        )


#: The process-wide cache of :class:`rtafast.estimators.TSMapEstimator`.
default_cache = TSInputCache()


def _flux_guess(helper, dataset, kernel, exposure, npred, mask_any):
    """gammapy's ``estimate_flux_default`` as a norm image (kernel-correlated excess)."""
    kernel_data = kernel.data / np.sum(kernel.data**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = (dataset.counts.data - npred) / exposure.data
    flux = np.nan_to_num(flux)
    flux *= (u.Unit(dataset.counts.unit) / exposure.unit).to("1 / (cm2 s)")
    flux = convolve_images(flux, kernel_data)
    if mask_any is not None:
        flux = flux * mask_any
    flux = flux.sum(axis=0)
    energy_edges = dataset.counts.geom.axes["energy"].edges
    flux_ref = helper.kernel_model.spectral_model.integral(energy_edges[0], energy_edges[-1])
    return flux / flux_ref.to_value("1 / (cm2 s)")


def _mask_patterns(mask):
    """Index of each bin's energy-mask pattern and the patterns, shape (nP, nE)."""
    n_energy = mask.shape[0]
    if n_energy > 62:
        flat = mask.reshape(n_energy, -1).T
        patterns, inverse = np.unique(flat, axis=0, return_inverse=True)
        return inverse.reshape(mask.shape[1:]).astype(np.int32), patterns
    if mask.all():
        return np.zeros(mask.shape[1:], dtype=np.int32), np.ones((1, n_energy), dtype=bool)
    bits = np.left_shift(1, np.arange(n_energy, dtype=np.int64))
    codes = np.tensordot(bits, mask.astype(np.int64), axes=1)
    unique, inverse = np.unique(codes, return_inverse=True)
    patterns = (unique[:, None] & bits[None, :]) != 0
    return inverse.reshape(mask.shape[1:]).astype(np.int32), patterns


def default_mask(dataset, npred):
    """gammapy's ``estimate_mask_default`` on arrays (with the npred computed once).

    Masks of any dtype (gammapy allows float and integer ``mask_safe`` /
    ``mask_fit`` maps): gammapy takes ``dataset.mask`` (``mask_safe * mask_fit``) or
    ``mask_safe`` and applies ``&= isfinite(npred)``, which for a Map is
    ``np.logical_and``: a bin is used where the mask is non-zero (NaN counts as
    non-zero) and the npred finite. The result is boolean.
    """
    if dataset.mask_fit is not None:
        mask = dataset.mask.data
    elif dataset.mask_safe is not None:
        mask = dataset.mask_safe.data
    else:
        return np.isfinite(npred)
    return np.logical_and(mask, np.isfinite(npred))


def _dataset_layers(helper, dataset, cache, sum_over_energy_groups, need_guess):
    npred = dataset.npred().data
    mask = default_mask(dataset, npred)
    counts = (dataset.counts.data * mask).astype(np.float64)
    # masked bins are 0 (npred * mask would keep a masked NaN npred: gammapy's
    # statistic truncates such a bin to a constant ~1e-25, its npred sum skips it)
    background = np.where(mask, npred, 0.0)
    kernel, exposure, exposure_npred = cache.get(helper, dataset)
    guess = None
    if need_guess:
        dataset_mask = dataset.mask
        guess = _flux_guess(
            helper,
            dataset,
            kernel,
            exposure,
            npred,
            None if dataset_mask is None else dataset_mask.data,
        )
    expo = exposure_npred.data * mask
    layers = scan_layers(counts, background, expo, kernel, mask, sum_over_energy_groups)
    return layers[:5] + (guess, layers[5])


def scan_layers(counts, background, expo, kernel, mask, sum_over_energy_groups):
    """One dataset's scan layers (unpadded), gammapy's per-pixel conventions.

    Parameters
    ----------
    counts, background, expo : ndarray, shape (n_energy, ny, nx)
        Masked counts, background and source exposure (``counts`` may be None).
    kernel : `gammapy.maps.Map`
        Kernel per energy bin (unit sum each).
    mask : ndarray of bool, shape (n_energy, ny, nx)
    sum_over_energy_groups : bool
        Sum the energy bins into one layer (each bin's kernel the mask-weighted mean
        of the energy kernels: one row of the kernel table per mask pattern).

    Returns
    -------
    counts, background, expo : ndarray, shape (L, ny, nx)
        ``counts`` None if given None.
    kidx : ndarray, int32, shape (L, ny, nx)
    ktab : ndarray, float64, shape (nK, ky, kx)
    mask_2d : ndarray of bool, shape (ny, nx)
        The pixels fitted: some energy unmasked and some background.
    """
    kdata = np.asarray(kernel.data, dtype=np.float64)
    if sum_over_energy_groups:
        index, patterns = _mask_patterns(mask)
        weights = patterns.astype(np.float64)[:, :, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            ktab = (kdata[None] * weights).sum(axis=1) / weights.sum(axis=1)
        ktab[~np.isfinite(ktab)] = 0.0
        if counts is not None:
            counts = counts.sum(axis=0, keepdims=True)
        background = background.sum(axis=0, keepdims=True)
        expo = expo.sum(axis=0, keepdims=True)
        kidx = index[None]
    else:
        ktab = kdata
        kidx = np.broadcast_to(
            np.arange(kdata.shape[0], dtype=np.int32)[:, None, None], background.shape
        )
    mask_2d = mask.any(axis=0) & (background.sum(axis=0) > 0)
    return counts, background, expo, kidx, ktab, mask_2d


def build_scan_inputs(helper, datasets, cache, sum_over_energy_groups, **options):
    """TS-scan inputs of datasets sharing one image geometry (one energy group).

    Parameters
    ----------
    helper : `gammapy.estimators.TSMapEstimator`
        Kernel model and width.
    datasets : `gammapy.datasets.Datasets`
    cache : `TSInputCache`
    sum_over_energy_groups : bool
    **options
        ``threshold``, ``use_threshold``, ``n_sigma``, ``n_sigma_ul``, ``rtol``,
        ``max_niter``, ``want_errs``, ``want_ul`` of :class:`TSScanInputs`.

    Returns
    -------
    inputs : `rtafast_kernels.tsmap.inputs.TSScanInputs`
    positions : tuple of ndarray
        ``(y, x)`` pixel indices of the fitted pixels.
    ring : tuple of ndarray or None
        ``(stat, npred)`` to subtract from the scan's ``stat`` and ``stat_null``
        (times 2) and ``npred`` of each fitted pixel when kernels were padded to a
        common shape (see :func:`_ring_terms`), else None.

    Raises
    ------
    ValueError
        If no pixel can be fitted (as gammapy).
    """
    need_guess = bool(options.get("use_threshold", False))
    parts = [
        _dataset_layers(helper, d, cache, sum_over_energy_groups, need_guess) for d in datasets
    ]
    mask_2d = np.logical_or.reduce([p[6] for p in parts])
    if not np.any(mask_2d):
        raise ValueError(
            "No valid positions found. Check that the dataset background is defined and "
            "not only zeros, or that the mask is not all False."
        )
    # kernels of different shapes (joint maps of datasets with different PSFs or
    # pixel sizes): each kernel zero-padded to the largest footprint; the bins this
    # adds to a dataset's footprint have no model, and their constant terms are
    # subtracted from stat, stat_null and npred afterwards (``ring``)
    ky = max(p[4].shape[1] for p in parts)
    kx = max(p[4].shape[2] for p in parts)
    ktabs = [_pad_kernel(p[4], ky, kx) for p in parts]
    pad = ((0, 0), (ky // 2, ky // 2), (kx // 2, kx // 2))
    offsets = np.cumsum([0] + [k.shape[0] for k in ktabs[:-1]])
    counts = np.pad(np.concatenate([p[0] for p in parts]), pad)
    background = np.pad(np.concatenate([p[1] for p in parts]), pad)
    expo = np.pad(np.concatenate([p[2] for p in parts]), pad)
    kidx = np.pad(
        np.concatenate([p[3] + o for p, o in zip(parts, offsets, strict=True)]).astype(np.int32),
        pad,
    )
    ktab = np.ascontiguousarray(np.concatenate(ktabs))
    y, x = np.nonzero(mask_2d)
    if need_guess:
        guesses = np.stack([p[5] for p in parts])
        finite = np.isfinite(guesses)
        with np.errstate(invalid="ignore"):
            guess = np.where(
                finite.any(axis=0), np.where(finite, guesses, 0).sum(0) / finite.sum(0), 1.0
            )[y, x]
    else:
        # without a threshold the guess is not used: each fit starts from its own point
        guess = np.zeros(y.size)
    ring = _ring_terms(parts, counts, background, ky, kx, y, x)
    inputs = TSScanInputs(
        counts=np.ascontiguousarray(counts, dtype=np.float64),
        background=np.ascontiguousarray(background, dtype=np.float64),
        expo=np.ascontiguousarray(expo, dtype=np.float64),
        kidx=np.ascontiguousarray(kidx),
        ktab=ktab,
        pix_y=y.astype(np.int64),
        pix_x=x.astype(np.int64),
        guess=np.ascontiguousarray(guess, dtype=np.float64),
        ring_counts=None if ring is None else ring[2],
        **options,
    )
    return inputs, (y, x), ring[:2] if ring is not None else None


def _pad_kernel(ktab, ky, kx):
    """A kernel table zero-padded symmetrically to ``(ky, kx)`` (odd sizes)."""
    dy, dx = ky - ktab.shape[1], kx - ktab.shape[2]
    if dy == 0 and dx == 0:
        return ktab
    if dy % 2 or dx % 2:
        raise ValueError(f"kernel shapes {ktab.shape[1:]} and {(ky, kx)} are not both odd")
    return np.pad(ktab, ((0, 0), (dy // 2, dy // 2), (dx // 2, dx // 2)))


def _ring_terms(parts, counts, background, ky, kx, y, x):
    """Per fitted pixel, what the kernel padding added: ``(stat, npred, counts)``.

    A dataset whose kernel is smaller than ``(ky, kx)`` had its footprint grown by a
    ring of bins with no model; gammapy does not count them. Their terms (half the
    Cash term of ``n, b`` with gammapy's truncation, bins with ``n = b = 0``
    dropped, ``b`` and ``n``) are summed over the ring with integral images, in
    float64 (the counts are whole numbers: their sums are exact).
    None when every kernel has the full shape.
    """
    if all(p[4].shape[1:] == (ky, kx) for p in parts):
        return None
    stat = np.zeros(y.size)
    npred = np.zeros(y.size)
    ring_counts = np.zeros(y.size)
    layer = 0
    for part in parts:
        n_layers, sky, skx = part[0].shape[0], part[4].shape[1], part[4].shape[2]
        sl = slice(layer, layer + n_layers)
        layer += n_layers
        if (sky, skx) == (ky, kx):
            continue
        n, b = counts[sl], background[sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where((n == 0) & (b == 0), 0.0, _half_cash(n, b)).sum(axis=0)
        images = ((terms, stat), (b.sum(axis=0), npred), (n.sum(axis=0), ring_counts))
        for image, out in images:
            integral = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
            np.cumsum(np.cumsum(image, axis=0), axis=1, out=integral[1:, 1:])
            # pixel (y, x) of the map is at (y + ky // 2, x + kx // 2) in the padded arrays
            cy, cx = y + ky // 2, x + kx // 2
            out += _box(integral, cy, cx, ky // 2, kx // 2) - _box(
                integral, cy, cx, sky // 2, skx // 2
            )
    return stat, npred, ring_counts


def _box(integral, cy, cx, hy, hx):
    """Sums over the boxes ``[cy - hy, cy + hy] x [cx - hx, cx + hx]`` of an integral image."""
    y0, y1, x0, x1 = cy - hy, cy + hy + 1, cx - hx, cx + hx + 1
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]


def _half_cash(n, mu):
    """Half of gammapy's Cash term ``mu - n log(mu)``, ``mu`` truncated at 1e-25."""
    mu = np.maximum(mu, TRUNCATION_VALUE)
    return mu - n * np.log(mu)
