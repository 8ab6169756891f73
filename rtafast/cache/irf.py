"""IRF-derived maps computed once per observation and geometry, rescaled by time.

For a fixed pointing and a background aligned with RA/Dec, gammapy's exposure map
is proportional to the live time, the background map to the on-time, and the
PSF and energy-dispersion maps only carry an exposure map that scales with the
live time. :class:`IRFMapCache` keeps each map per unit of time, keyed on the
content of the observation's IRFs, its pointing, the geometry and the maker's
options; callers get a rescaled copy (never the cached object).
"""

import copy

import numpy as np

from .keys import content_digest
from .lru import LRUCache

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


class IRFMapCache(LRUCache):
    """Least-recently-used cache of per-unit-time IRF maps."""

    def __init__(self, maxsize=128):
        super().__init__(maxsize)

    def get(self, key, compute, duration, kind):
        """Map for ``duration`` seconds, computed once per unit of time.

        Parameters
        ----------
        key : hashable
            Identifies observation IRFs, pointing, geometry and options.
        compute : callable
            Computes the map for the actual observation (gammapy).
        duration : float
            The observation's live time or on-time, s.
        kind : {"map", "irf"}
            ``"map"``: the map scales with time; ``"irf"``: a PSF/EDisp map whose
            ``exposure_map`` scales with time.
        """
        cached = self.lookup(key)
        if cached is None:
            value = compute()
            per_second = value / duration if kind == "map" else _scaled_irf(value, 1 / duration)
            self.store(key, per_second)
            return value
        return cached * duration if kind == "map" else _scaled_irf(cached, duration)


def _scaled_irf(irf, factor):
    scaled = copy.deepcopy(irf)
    if scaled is not None and scaled.exposure_map is not None:
        scaled.exposure_map = scaled.exposure_map * factor
    return scaled


#: Process-wide cache used by rtafast's maker.
default_irf_cache = IRFMapCache()
