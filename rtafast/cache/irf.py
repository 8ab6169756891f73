"""IRF-derived maps computed once per observation and geometry, rescaled by time.

For a fixed pointing and a background aligned with RA/Dec, gammapy's exposure map
is proportional to the live time, the background map to the on-time, and the
PSF and energy-dispersion maps only carry an exposure map that scales with the
live time. :class:`IRFMapCache` keeps each map per unit of time, keyed on the
content of the observation's IRFs, its pointing, the geometry and the maker's
options (:class:`rtafast.cache.scaling.ScaledCache`); the maker gets a rescaled copy
(never the cached object), the stream the per-second maps themselves.
"""

import numpy as np

from .keys import content_digest
from .scaling import ScaledCache, per_unit, scaled

__all__ = ["IRFMapCache", "default_irf_cache", "observation_key", "is_time_independent"]


def is_time_independent(observation):
    """True when the maps of ``observation`` do not depend on when it is sliced.

    The pointing must be fixed in the sky and the background model not aligned
    with Alt/Az (an Alt/Az-aligned background rotates with time).
    """
    from gammapy.data.pointing import PointingMode

    fixed = getattr(observation.pointing, "mode", None) == PointingMode.POINTING
    alignment = str(getattr(observation.bkg, "fov_alignment", "RADEC"))
    return fixed and "ALTAZ" not in alignment.upper()


def observation_key(observation):
    """Content key of an observation's IRFs and pointing (not of its events or times)."""
    parts = [str(observation.obs_id)]
    for name in ("aeff", "bkg", "psf", "edisp"):
        irf = getattr(observation, name, None)
        parts.append(
            content_digest(np.asarray(irf.data)) if getattr(irf, "data", None) is not None else "-"
        )
    pointing = observation.get_pointing_icrs(observation.tmid)
    parts.append(f"{pointing.ra.deg:.12f},{pointing.dec.deg:.12f}")
    return "|".join(parts)


class IRFMapCache(ScaledCache):
    """Least-recently-used cache of per-unit-time IRF maps (see :mod:`rtafast.cache.scaling`).

    An entry is a map per second of live time (exposure; the exposure map of a PSF or
    EDisp map) or of on-time (background), stored on a miss from the map gammapy
    computed for the observation, divided once by its duration (float64,
    :func:`rtafast.cache.scaling.per_unit`).
    """

    def __init__(self, maxsize=128):
        super().__init__(maxsize)

    def unit(self, key, compute, duration, kind):
        """The map per second of time, computed once.

        Parameters
        ----------
        key : hashable
            Identifies observation IRFs, pointing, geometry and options.
        compute : callable
            Computes the map for the actual observation (gammapy).
        duration : float
            The observation's live time or on-time, s (divides ``compute()`` on a miss).
        kind : {"map", "irf"}
            ``"map"``: the map scales with time; ``"irf"``: a PSF/EDisp map whose
            ``exposure_map`` scales with time (as :func:`rtafast.cache.scaling.scaled`
            finds from the value's type).

        Returns
        -------
        object
            The cached entry itself: not to be modified.
        """
        return super().unit(key, lambda: per_unit(compute(), duration))

    def get(self, key, compute, duration, kind):
        """Map for ``duration`` seconds, computed once per unit of time (a new object).

        Parameters are those of :meth:`unit`; on a miss the computed map itself is
        returned (and its per-second version kept).
        """
        cached = self.lookup(key)
        if cached is None:
            value = compute()
            self.store(key, per_unit(value, duration))
            return value
        return scaled(cached, duration)


#: Process-wide cache used by rtafast's maker.
default_irf_cache = IRFMapCache()
