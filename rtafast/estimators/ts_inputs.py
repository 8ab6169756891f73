"""Input arrays of the TS scan, built from gammapy datasets (with a content-keyed cache).

The per-pixel conventions are gammapy 2.1's ``TSMapEstimator.estimate_fit_input_maps``
and ``SimpleMapDataset.from_arrays``: counts and predicted background times the
mask; the source model of a bin is the kernel (normalised per energy) times the
exposure in reconstructed energy (``estimate_exposure_reco_energy``, not
normalised) times the mask; with ``sum_over_energy_groups`` the energy bins are
summed and the kernel of each bin is the mask-weighted mean of the energy
kernels, which depends on which energies are unmasked at that bin: each distinct
mask pattern gets one row of the kernel table (a handful in practice).

The kernel (PSF/EDisp convolution of the kernel model, ~0.15 s) and the two
reconstructed-energy exposures depend only on the IRF maps, the mask, the
geometry and the kernel model. :class:`TSInputCache` keeps them with copies of the
IRF arrays they were computed from, and reuses an entry when the new IRF arrays
are a multiple of its copies: the kernel unchanged (gammapy normalises it per
energy bin, so it does not depend on the exposure's scale), the two exposures
(linear in the exposure map) times the exposure's factor -- 1 for repeated maps of
the same dataset. Real-time analysis maps window after window of one pointing:
the exposure grows with the live time, the IRF maps do not change, so the kernel is
computed once per pointing. "Multiple" means within :data:`PROPORTIONAL_RTOL` of
the largest value, element by element (or 8 rounding units of float32 maps): the
exposure by any positive factor, the PSF's and EDisp's exposure maps (stacking
weights, unused here) by any factor, the PSF and EDisp maps and the mask unchanged.
The comparison (~0.5 ms for the H.E.S.S. Crab map's ~1.5 MB of IRF maps, ~2.5 ms
for a 250x250 map's ~8 MB) runs at every call, the small arrays first; only the
WCS header string of a geometry object (``geom_key``) and its squashed output
geometry are memoised per object, checked against a fingerprint of its WCS
parameters, shape and axes.

gammapy's initial flux map (kernel-correlated excess, ~2 ms) is only computed
with a threshold, which it decides; rtafast's fits do not start from it.
"""

from typing import NamedTuple

import astropy.units as u
import numpy as np
from gammapy.estimators.utils import estimate_exposure_reco_energy

from rtafast._keys import geom_key
from rtafast._lru import LRUCache
from rtafast_kernels.tsmap_numpy import TSScanInputs

from .convolution import convolve_images

__all__ = [
    "TSInputCache",
    "default_cache",
    "build_scan_inputs",
    "squashed_geom",
    "PROPORTIONAL_RTOL",
]

#: Relative tolerance of "the IRF arrays are a multiple of a cached entry's".
PROPORTIONAL_RTOL = 1e-12
#: Of the arrays of :func:`_irf_arrays`: which may be scaled (the exposure, and the
#: PSF's and EDisp's exposure maps); the others must be unchanged.
_SCALABLE = (True, False, True, False, True, False)


def _irf_arrays(dataset):
    arrays = [dataset.exposure.data if dataset.exposure is not None else None]
    for irf, name in ((dataset.psf, "psf_map"), (dataset.edisp, "edisp_map")):
        if irf is None:
            arrays += [None, None]
            continue
        arrays.append(getattr(irf, name).data)
        exposure_map = getattr(irf, "exposure_map", None)
        arrays.append(exposure_map.data if exposure_map is not None else None)
    # ``dataset.mask_image`` (gammapy reduces the mask Map over its axes with
    # logical_or), from the arrays
    mask = dataset.mask
    arrays.append(np.logical_or.reduce(mask.data, axis=0) if mask is not None else None)
    return arrays


def _irf_geoms(dataset):
    """Units and geometries (WCS fingerprint, axes edges) of the IRF maps."""
    maps = [dataset.exposure]
    for irf, name in ((dataset.psf, "psf_map"), (dataset.edisp, "edisp_map")):
        maps.append(None if irf is None else getattr(irf, name))
    parts = []
    for m in maps:
        if m is None:
            parts.append(None)
            continue
        axes = tuple(
            (axis.name, np.asarray(axis.edges.value).tobytes(), str(axis.unit))
            for axis in m.geom.axes
        )
        parts.append((type(m.geom).__name__, str(m.unit), _wcs_fingerprint(m.geom), axes))
    return tuple(parts)


def _wcs_fingerprint(geom):
    wcs = getattr(geom, "wcs", None)
    if wcs is None:
        return None
    w = wcs.wcs
    return (
        w.crval.tobytes(),
        w.crpix.tobytes(),
        w.cdelt.tobytes(),
        w.get_pc().tobytes(),
        tuple(w.ctype),
        # bytes, not floats: NaN (an unset equinox) must compare equal to itself
        np.array([w.lonpole, w.latpole, w.equinox], dtype=np.float64).tobytes(),
        str(w.radesys),
        tuple(int(n) for n in geom.data_shape),
        tuple((axis.name, np.asarray(axis.edges.value).tobytes()) for axis in geom.axes),
    )


class _GeomMemo(LRUCache):
    """A function of a geometry memoised per geometry object (LRU).

    An entry is reused only for the same object whose WCS parameters and shape
    are unchanged (a cheap fingerprint), so a geometry edited in place is
    recomputed. Used for ``geom_key`` (a WCS header string, ~0.2 ms) and for the
    squashed output geometry (~0.15 ms).
    """

    def __init__(self, function, maxsize=16):
        super().__init__(maxsize)
        self.function = function

    def __call__(self, geom):
        fingerprint = _wcs_fingerprint(geom)
        entry = self.lookup(id(geom))
        if entry is not None and entry[0] is geom and entry[1] == fingerprint:
            return entry[2]
        value = self.function(geom)
        self.store(id(geom), (geom, fingerprint, value))
        return value


_geom_keys = _GeomMemo(geom_key)
#: The image geometry of the output maps of a dataset geometry (energy axis squashed).
squashed_geom = _GeomMemo(lambda geom: geom.squash(axis_name="energy"))


def _model_key(model):
    parts = [type(model.spatial_model).__name__, type(model.spectral_model).__name__]
    parts += [(p.name, float(p.value), str(p.unit)) for p in model.parameters]
    frame = getattr(model.spatial_model, "frame", None)
    return (tuple(parts), frame)


class TSInputCache(LRUCache):
    """Least-recently-used cache of TS kernels and reconstructed-energy exposures.

    An entry is reused for a dataset of the same layout (IRF map geometries, counts
    geometry, kernel model and width) whose IRF arrays are a multiple of the
    entry's (see the module's notes): ``hits`` counts reuses, ``rescaled`` those of
    them with an exposure factor other than 1, ``misses`` the entries computed.

    Parameters
    ----------
    maxsize : int
        Number of entries kept (each holds a copy of its IRF arrays).
    """

    def __init__(self, maxsize=16):
        super().__init__(maxsize)
        self.rescaled = 0
        self._serial = 0

    def get(self, helper, dataset):
        """Return ``(kernel, exposure_normalised, exposure_npred)`` Maps for a dataset.

        Parameters
        ----------
        helper : `rtafast.estimators.TSMapEstimator`
            Carries the kernel model and width (its ``_compute_kernel``, gammapy's
            ``estimate_kernel``, runs on a miss).
        dataset : `gammapy.datasets.MapDataset`
        """
        arrays = _irf_arrays(dataset)
        layout = (
            _irf_geoms(dataset),
            _geom_keys(dataset.counts.geom),
            _model_key(helper.kernel_model),
            None if helper.kernel_width is None else str(helper.kernel_width),
        )
        for key, entry in reversed(self.items()):  # most recently used first
            if key[0] != layout:
                continue
            factor = _exposure_factor(arrays, entry.arrays)
            if factor is None:
                continue
            self.hits += 1
            self.store(key, entry)  # now the most recently used
            if factor == 1.0:
                return entry.kernel, entry.exposure, entry.exposure_npred
            self.rescaled += 1
            return entry.kernel, entry.exposure * factor, entry.exposure_npred * factor
        self.misses += 1
        spectral = helper.kernel_model.spectral_model
        entry = _TSInputs(
            helper._compute_kernel(dataset),
            estimate_exposure_reco_energy(dataset, spectral, normalize=True),
            estimate_exposure_reco_energy(dataset, spectral, normalize=False),
            _copies(arrays),
        )
        self._serial += 1
        self.store((layout, self._serial), entry)
        return entry.kernel, entry.exposure, entry.exposure_npred


class _TSInputs(NamedTuple):
    kernel: object
    exposure: object
    exposure_npred: object
    #: Copies of the IRF arrays the entry was computed from (:func:`_irf_arrays`).
    arrays: tuple


def _copies(arrays):
    return tuple(None if a is None else np.array(a, copy=True) for a in arrays)


def _factor(array, reference):
    """``s`` with ``array == s * reference`` element by element, or None.

    Within :data:`PROPORTIONAL_RTOL` of the largest value, or 8 rounding units of
    the less precise of the two dtypes (float32 maps rescaled in float32).
    """
    if array.shape != reference.shape:
        return None
    if array.dtype == bool or reference.dtype == bool:
        return 1.0 if array.dtype == reference.dtype and np.array_equal(array, reference) else None
    floating = (np.issubdtype(d, np.floating) for d in (array.dtype, reference.dtype))
    if not all(floating):
        return 1.0 if np.array_equal(array, reference) else None
    top = np.max(np.abs(array)) if array.size else 0.0
    top_reference = np.max(np.abs(reference)) if reference.size else 0.0
    if not (np.isfinite(top) and np.isfinite(top_reference)):
        return None
    if top_reference == 0:
        return 1.0 if top == 0 else None
    factor = float(top) / float(top_reference)
    coarse = max(np.finfo(array.dtype).eps, np.finfo(reference.dtype).eps)
    rtol = max(PROPORTIONAL_RTOL, 8 * coarse)
    deviation = np.max(np.abs(array - factor * np.asarray(reference, dtype=np.float64)))
    return factor if deviation <= rtol * top else None


def _exposure_factor(arrays, references):
    """The exposure's factor if each IRF array is an allowed multiple of its reference
    (see :data:`_SCALABLE`), else None. The arrays that must be unchanged are
    compared first, smallest first: a different pointing or mask is rejected cheaply."""
    order = sorted(
        range(len(arrays)),
        key=lambda i: (_SCALABLE[i], 0 if arrays[i] is None else arrays[i].nbytes),
    )
    factors = [1.0] * len(arrays)
    for i in order:
        array, reference = arrays[i], references[i]
        if array is None or reference is None:
            if array is not reference:
                return None
            continue
        factor = _factor(array, reference)
        if factor is None or factor <= 0:
            return None
        if not _SCALABLE[i] and abs(factor - 1.0) > 8 * np.finfo(np.float32).eps:
            return None
        factors[i] = factor
    return factors[0]


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


def _default_mask(dataset, npred):
    """gammapy's ``estimate_mask_default`` on arrays (with the npred computed once)."""
    if dataset.mask_fit:
        mask = dataset.mask.data
    elif dataset.mask_safe:
        mask = dataset.mask_safe.data
    else:
        mask = np.ones(dataset.counts.data.shape, dtype=bool)
    return mask & np.isfinite(npred)


def _dataset_layers(helper, dataset, cache, sum_over_energy_groups, need_guess):
    npred = dataset.npred().data
    mask = _default_mask(dataset, npred)
    counts = (dataset.counts.data * mask).astype(np.float64)
    background = npred * mask
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
    kdata = np.asarray(kernel.data, dtype=np.float64)
    if sum_over_energy_groups:
        index, patterns = _mask_patterns(mask)
        weights = patterns.astype(np.float64)[:, :, None, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            ktab = (kdata[None] * weights).sum(axis=1) / weights.sum(axis=1)
        ktab[~np.isfinite(ktab)] = 0.0
        counts = counts.sum(axis=0, keepdims=True)
        background = background.sum(axis=0, keepdims=True)
        expo = expo.sum(axis=0, keepdims=True)
        kidx = index[None]
    else:
        ktab = kdata
        kidx = np.broadcast_to(
            np.arange(kdata.shape[0], dtype=np.int32)[:, None, None], counts.shape
        )
    mask_2d = mask.any(axis=0) & (background.sum(axis=0) > 0)
    return counts, background, expo, kidx, ktab, guess, mask_2d


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
    inputs : `rtafast_kernels.tsmap_numpy.TSScanInputs`
    positions : tuple of ndarray
        ``(y, x)`` pixel indices of the fitted pixels.

    Raises
    ------
    ValueError
        If no pixel can be fitted (as gammapy).
    NotImplementedError
        If the datasets' kernels differ in shape.
    """
    need_guess = bool(options.get("use_threshold", False))
    parts = [
        _dataset_layers(helper, d, cache, sum_over_energy_groups, need_guess) for d in datasets
    ]
    shapes = {p[4].shape[1:] for p in parts}
    if len(shapes) != 1:
        raise NotImplementedError(f"datasets with different kernel shapes {shapes}")
    ky, kx = shapes.pop()
    mask_2d = np.logical_or.reduce([p[6] for p in parts])
    if not np.any(mask_2d):
        raise ValueError(
            "No valid positions found. Check that the dataset background is defined and "
            "not only zeros, or that the mask is not all False."
        )
    pad = ((0, 0), (ky // 2, ky // 2), (kx // 2, kx // 2))
    offsets = np.cumsum([0] + [p[4].shape[0] for p in parts[:-1]])
    counts = np.pad(np.concatenate([p[0] for p in parts]), pad)
    background = np.pad(np.concatenate([p[1] for p in parts]), pad)
    expo = np.pad(np.concatenate([p[2] for p in parts]), pad)
    kidx = np.pad(
        np.concatenate([p[3] + o for p, o in zip(parts, offsets, strict=True)]).astype(np.int32),
        pad,
    )
    ktab = np.ascontiguousarray(np.concatenate([p[4] for p in parts]))
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
    inputs = TSScanInputs(
        counts=np.ascontiguousarray(counts, dtype=np.float64),
        background=np.ascontiguousarray(background, dtype=np.float64),
        expo=np.ascontiguousarray(expo, dtype=np.float64),
        kidx=np.ascontiguousarray(kidx),
        ktab=ktab,
        pix_y=y.astype(np.int64),
        pix_x=x.astype(np.int64),
        guess=np.ascontiguousarray(guess, dtype=np.float64),
        **options,
    )
    return inputs, (y, x)
