"""Quantities proportional to a time, kept per unit and scaled: rtafast's one rescaling.

For a fixed pointing, gammapy's exposure map and the exposure maps a PSF or EDisp map
carries are proportional to the live time, the background map to the on-time, and what
is computed from them linearly (reconstructed-energy exposures, a model's predicted
counts) is too; what is normalised (the TS kernel) is not. Every rtafast cache keeps
such quantities per unit -- per second, or per the arrays of the dataset an entry was
computed from -- and hands them out times a factor (:class:`ScaledCache`):

* the factor is *carried* wherever the time is known: the maker knows its
  observation's live time and on-time (:class:`rtafast.cache.irf.IRFMapCache`), a
  stream window its own (:class:`rtafast.stream.StreamWindow`); nothing is divided
  back or compared;
* it is *found* only for a gammapy dataset of unknown origin given to a drop-in
  estimator, by comparing its IRF arrays with an entry's
  (:class:`rtafast.cache.irf_match.RescalingCache`).

:func:`scaled` multiplies one value by a factor, whatever it is: a gammapy ``Map``
(its data; the geometry is shared), a PSF or EDisp map (its exposure map), a number or
array, or a cache entry with a ``scaled(factor)`` method.
"""

import copy

import numpy as np
from gammapy.maps import Map

from .._maps import map_like
from .lru import LRUCache

__all__ = ["ScaledCache", "per_unit", "scaled", "scaled_irf", "scaled_map"]


def scaled_map(template, factor):
    """A map sharing ``template``'s geometry with its data times ``factor`` (None: None).

    Parameters
    ----------
    template : `gammapy.maps.Map` or None
    factor : float

    Returns
    -------
    `gammapy.maps.Map` or None
        The data is a new array in the template's dtype (a float32 map stays float32).
    """
    if template is None:
        return None
    return map_like(template, template.data * factor)


def scaled_irf(irf, factor):
    """A PSF or EDisp map whose exposure map is scaled by ``factor`` (None: None).

    The IRF map's data is copied (never shared with a cached entry); both maps keep
    their geometries.
    """
    if irf is None:
        return None
    exposure_map = irf.exposure_map
    if exposure_map is not None:
        exposure_map = scaled_map(exposure_map, factor)
    irf_map = irf._irf_map
    if isinstance(irf_map, Map):
        irf_map = map_like(irf_map, irf_map.data.copy())
    else:  # pragma: no cover - an IRF map type without a Map (not in gammapy 2.1)
        irf_map = copy.deepcopy(irf_map)
    return type(irf)(irf_map, exposure_map)


def per_unit(value, duration):
    """A value computed for ``duration`` as a per-unit entry: divided by it, in float64.

    The one division of the mechanism: a cache entry made from a map gammapy computed
    for an observation's live time or on-time (:class:`rtafast.cache.irf.IRFMapCache`).
    Maps (and the exposure maps of PSF/EDisp maps) become float64, so that scaling the
    entry back by the same duration gives gammapy's map to float64 rounding.

    Parameters
    ----------
    value : `gammapy.maps.Map`, PSF/EDisp map, number or array
    duration : float
        s.
    """
    if isinstance(value, Map):
        return map_like(value, np.true_divide(value.data, duration, dtype=np.float64))
    if hasattr(value, "exposure_map") and hasattr(value, "_irf_map"):
        irf = scaled_irf(value, 1.0)  # a copy
        if irf.exposure_map is not None:
            irf.exposure_map = per_unit(irf.exposure_map, duration)
        return irf
    return value / duration


def scaled(value, factor):
    """``value`` times ``factor``: a Map, an IRF map (its exposure map), an entry with a
    ``scaled(factor)`` method, or anything that multiplies (numbers, arrays).

    Parameters
    ----------
    value : object
    factor : float

    Returns
    -------
    object
        A new object (the value itself is not modified).
    """
    if hasattr(value, "scaled"):
        return value.scaled(factor)
    if isinstance(value, Map):
        return scaled_map(value, factor)
    if hasattr(value, "exposure_map") and hasattr(value, "_irf_map"):
        return scaled_irf(value, factor)
    return value * factor


class ScaledCache(LRUCache):
    """Least-recently-used cache of entries kept per unit and handed out scaled.

    Subclasses decide what "unit" means (one second of live time or on-time, or the
    arrays an entry was computed from) and where the factor comes from; the scaling
    itself is :func:`scaled`. ``rescaled`` counts the reuses whose factor had to be
    found (:class:`rtafast.cache.irf_match.RescalingCache`).

    Parameters
    ----------
    maxsize : int
        Number of entries kept.
    """

    def __init__(self, maxsize):
        super().__init__(maxsize)
        self.rescaled = 0

    def unit(self, key, compute_unit):
        """The entry of ``key`` per unit, ``compute_unit()`` stored on a miss."""
        return self.get_or_compute(key, compute_unit)

    def scale(self, entry, factor):
        """``entry`` times ``factor`` (the entry itself for a factor of 1)."""
        return entry if factor == 1.0 else scaled(entry, factor)
