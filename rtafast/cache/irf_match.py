"""Whether a dataset's IRF maps are a multiple of cached ones: the caches' matching.

Real-time analysis computes maps window after window of one pointing: the exposure
(and the IRFs' exposure maps) grow with the live time, the PSF, EDisp and masks do
not. Quantities that are linear in the exposure map (reconstructed-energy
exposures) or do not depend on its scale (kernels normalised per energy) can then
be computed once and rescaled. :class:`RescalingCache` keeps entries with copies of
the IRF arrays they came from (:func:`irf_arrays`) and finds the entry whose copies
the new arrays are a multiple of (:func:`exposure_factor`): the exposure and the
IRFs' exposure maps by any positive factor, the PSF and EDisp maps and the mask
image unchanged, element by element within :data:`PROPORTIONAL_RTOL` of the
largest value (or 8 rounding units of float32 maps). The comparison runs at every
lookup, the arrays that must be unchanged first, smallest first, so a different
pointing or mask is rejected cheaply, and an array equal to its copy (the same
dataset again) is recognised in one equality pass, without computing a factor.

This comparison is for gammapy datasets of unknown origin only (the drop-in
estimators called with a ``MapDataset``): where the live time is known -- a stream
window carries it -- the caches look their per-unit entries up by key and scale them
by it (:mod:`rtafast.cache.scaling`, the one rescaling mechanism both use).
"""

import numpy as np

from rtafast.cache.keys import geom_key
from rtafast.cache.lru import LRUCache
from rtafast.cache.scaling import ScaledCache

__all__ = [
    "PROPORTIONAL_RTOL",
    "RescalingCache",
    "GeomMemo",
    "geom_keys",
    "irf_arrays",
    "irf_geoms",
    "wcs_fingerprint",
    "exposure_factor",
    "copies",
]

#: Relative tolerance of "the IRF arrays are a multiple of a cached entry's".
PROPORTIONAL_RTOL = 1e-12
#: Of the arrays of :func:`irf_arrays`: which may be scaled (the exposure, and the
#: PSF's and EDisp's exposure maps); the others must be unchanged.
SCALABLE = (True, False, True, False, True, False)


def irf_arrays(dataset):
    """The arrays a dataset's IRF-derived quantities depend on (no copies).

    Returns
    -------
    list of ndarray or None
        Exposure, PSF map and its exposure map, EDisp map and its exposure map, and
        the mask image (``dataset.mask`` reduced over energy with ``logical_or``).
    """
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


def irf_geoms(dataset):
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
        parts.append((type(m.geom).__name__, str(m.unit), wcs_fingerprint(m.geom), axes))
    return tuple(parts)


def wcs_fingerprint(geom):
    """Hashable WCS parameters, shape and axes of a geometry (None without a WCS)."""
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


class GeomMemo(LRUCache):
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
        fingerprint = wcs_fingerprint(geom)
        entry = self.lookup(id(geom))
        if entry is not None and entry[0] is geom and entry[1] == fingerprint:
            return entry[2]
        value = self.function(geom)
        self.store(id(geom), (geom, fingerprint, value))
        return value


#: ``geom_key`` of a geometry, memoised per geometry object (the caches' layout keys).
geom_keys = GeomMemo(geom_key)


def copies(arrays):
    """Copies of :func:`irf_arrays` to keep in a cache entry (None stays None)."""
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
    if not array.size:
        return 1.0
    if _equal(array, reference):  # the same dataset again: one comparison pass
        return 1.0
    top, top_reference = _max_abs(array), _max_abs(reference)
    if not (np.isfinite(top) and np.isfinite(top_reference)):
        return None
    if top_reference == 0:
        return 1.0 if top == 0 else None
    factor = top / top_reference
    coarse = max(np.finfo(array.dtype).eps, np.finfo(reference.dtype).eps)
    rtol = max(PROPORTIONAL_RTOL, 8 * coarse)
    # array - factor * reference in one float64 buffer (no other temporaries)
    difference = np.multiply(reference, -factor, dtype=np.float64)
    np.add(difference, array, out=difference)
    return factor if _max_abs(difference) <= rtol * top else None


def _equal(array, reference):
    """Whether two float arrays of one shape are equal element by element (no NaN).

    A strided sample is compared first, so arrays that differ (a rescaled exposure)
    cost a small fraction of a pass; equal ones one ``array_equal`` pass (~0.1 ms for a
    3 MB exposure cube, where the factor's float64 difference costs ~1 ms).
    """
    flat, flat_reference = array.reshape(-1), reference.reshape(-1)
    step = max(1, flat.size // 4096)
    if not np.array_equal(flat[::step], flat_reference[::step]):
        return False
    return bool(np.array_equal(array, reference))


def _max_abs(array):
    """``max(|array|)`` without a temporary array (NaN if any is NaN)."""
    return max(float(np.max(array)), -float(np.min(array)))


def exposure_factor(arrays, references):
    """The exposure's factor if each IRF array is an allowed multiple of its reference
    (see :data:`SCALABLE`), else None. The arrays that must be unchanged are
    compared first, smallest first: a different pointing or mask is rejected cheaply."""
    order = sorted(
        range(len(arrays)),
        key=lambda i: (SCALABLE[i], 0 if arrays[i] is None else arrays[i].nbytes),
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
        if not SCALABLE[i] and abs(factor - 1.0) > 8 * np.finfo(np.float32).eps:
            return None
        factors[i] = factor
    return factors[0]


class RescalingCache(ScaledCache):
    """LRU cache of entries computed from IRF maps, reused for multiples of them.

    Entries are stored under ``(layout, serial)``: ``layout`` is what must be equal
    (geometries, options), and each entry has an ``arrays`` attribute, the copies of
    the :func:`irf_arrays` it was computed from, and a ``scaled(factor)`` method. An
    entry is per unit of those arrays: :meth:`find` gives the factor of new arrays,
    :meth:`ScaledCache.scale` applies it. Entries of a known origin (a stream
    window's pointing, per second) are stored and looked up by key with
    :meth:`ScaledCache.unit` instead, and scaled by the time the caller carries.
    ``hits`` counts reuses, ``rescaled`` those of :meth:`find` with a factor other
    than 1, ``misses`` the lookups that found nothing.

    Parameters
    ----------
    maxsize : int
        Number of entries kept.
    """

    #: Serial number of the last entry added; the first :meth:`add` of an instance makes
    #: it an instance attribute, so each cache numbers its own entries from 1.
    _serial = 0

    def find(self, layout, arrays, accept=None):
        """The most recently used entry of ``layout`` that ``arrays`` are a multiple of.

        Parameters
        ----------
        layout : hashable
        arrays : list
            :func:`irf_arrays` of the dataset.
        accept : callable, optional
            Further condition on an entry (e.g. equal masks), checked first.

        Returns
        -------
        entry, factor
            The entry (now the most recently used) and the exposure's factor, or
            ``(None, None)``.
        """
        for key, entry in reversed(self.items()):  # most recently used first
            if not (isinstance(key, tuple) and len(key) == 2 and key[0] == layout):
                continue
            if accept is not None and not accept(entry):
                continue
            factor = exposure_factor(arrays, entry.arrays)
            if factor is None:
                continue
            self.hits += 1
            if factor != 1.0:
                self.rescaled += 1
            self.store(key, entry)
            return entry, factor
        self.misses += 1
        return None, None

    def add(self, layout, entry):
        """Keep a newly computed entry of ``layout``."""
        self._serial += 1
        self.store((layout, self._serial), entry)
