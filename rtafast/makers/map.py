"""Drop-in ``MapDatasetMaker``: counts from rtafast's binning kernel, IRF maps cached.

Same constructor and ``run(dataset, observation)`` as gammapy's (its ``run`` is
gammapy's); ``make_counts`` bins with :func:`rtafast.events.binning.fill_counts` into the
geometries the kernel supports (:func:`rtafast.events.binning.geometry_problem`), and for
observations whose maps do not depend on time (fixed pointing, background
not Alt/Az-aligned) ``make_exposure``, ``make_background``, ``make_psf``,
``make_edisp`` and ``make_edisp_kernel`` compute each map once per observation's
IRFs, pointing and geometry (:mod:`rtafast.cache.irf`), then rescale it by the
live time (exposure, and the PSF/EDisp exposure maps) or on-time (background);
``run_per_unit_time`` gives the per-second maps themselves (what the stream scales
by each window's live time and on-time). Anything else -- a
`~gammapy.datasets.MapDataset` as the "observation" (gammapy's way of interpolating a
dataset onto a new geometry), HEALPix or region geometries -- runs gammapy's own
makers, counted by :mod:`rtafast.dispatch`.
"""

from functools import partial

from gammapy.data import Observation
from gammapy.makers import MapDatasetMaker as GammapyMapDatasetMaker

from .. import dispatch
from ..cache.irf import default_irf_cache, is_time_independent, observation_key
from ..cache.keys import geom_key
from ..cache.scaling import per_unit, scaled
from ..events.binning import fill_counts, geometry_problem

__all__ = ["MapDatasetMaker"]


class MapDatasetMaker(GammapyMapDatasetMaker):
    """gammapy's ``MapDatasetMaker`` with kernel counts and cached IRF maps.

    Parameters
    ----------
    array_backend : str, optional
        rtafast backend of the binning kernel.
    cache_irf : bool
        Reuse IRF maps across calls for time-independent observations.
    **kwargs
        gammapy's ``MapDatasetMaker`` arguments (``selection``,
        ``background_oversampling``, ``background_interp_missing_data``,
        ``background_pad_offset``, ``fov_rotation_step``).
    """

    def __init__(self, *args, array_backend=None, cache_irf=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.array_backend = array_backend
        self.cache_irf = cache_irf
        self._per_unit_time = False

    def run(self, dataset, observation):
        """Make a map dataset (gammapy's ``run``; see the module for what is rtafast's).

        Parameters
        ----------
        dataset : `~gammapy.datasets.MapDataset`
            Reference dataset.
        observation : `~gammapy.data.Observation` or `~gammapy.datasets.MapDataset`
            Observation (or a dataset to interpolate onto ``dataset``'s geometries).

        Returns
        -------
        `~gammapy.datasets.MapDataset`
        """
        reason = _delegation_reason(dataset.counts.geom, observation)
        if reason is None:
            dispatch.record("MapDatasetMaker.run", dispatch.FAST)
        else:
            dispatch.record("MapDatasetMaker.run", dispatch.GAMMAPY, *reason)
        return super().run(dataset, observation)

    def run_per_unit_time(self, dataset, observation):
        """``run``'s maps per second: exposure (and the PSF/EDisp exposure maps) per
        second of live time, background per second of on-time.

        For a time-independent observation these are the IRF cache's per-second maps
        (:mod:`rtafast.cache.irf`; computed once, never rescaled back and forth);
        otherwise gammapy's maps for the observation divided by its live time /
        on-time. ``counts`` should not be in ``selection`` (it does not scale).

        Parameters
        ----------
        dataset : `~gammapy.datasets.MapDataset`
            Reference dataset.
        observation : `~gammapy.data.Observation`

        Returns
        -------
        `~gammapy.datasets.MapDataset`
            Its maps are new objects (copies of the cached ones).
        """
        self._per_unit_time = True
        try:
            return self.run(dataset, observation)
        finally:
            self._per_unit_time = False

    def make_counts(self, geom, observation):
        """Counts map of the observation's events (rtafast's binning kernel).

        gammapy's ``make_counts`` where the kernel does not apply (see
        :func:`_delegation_reason`).
        """
        if _delegation_reason(geom, observation) is not None:
            return GammapyMapDatasetMaker.make_counts(geom, observation)
        return fill_counts(geom, observation.events, array_backend=self.array_backend)

    def _cached(self, name, kind, geom, observation, *args, use_ontime=False):
        """gammapy's ``make_<name>(geom, observation, *args)`` map for the observation (per
        second with ``run_per_unit_time``), from the IRF cache when the observation's maps
        do not depend on time.

        Parameters
        ----------
        name : {"exposure", "background", "psf", "edisp", "edisp_kernel"}
            The map: gammapy's maker method and the cache key's first part.
        kind : {"map", "irf"}
            ``"map"``: the map scales with time; ``"irf"``: its exposure map does.
        geom : `~gammapy.maps.Geom`
            The map's geometry.
        observation : `~gammapy.data.Observation` or `~gammapy.datasets.MapDataset`
            The observation (or dataset) of gammapy's method.
        *args
            Further arguments of gammapy's method.
        use_ontime : bool
            Scale by the on-time (s) rather than the live time (s).

        Returns
        -------
        `~gammapy.maps.Map` or IRF map
            The map for the observation's duration, s (per second with
            ``run_per_unit_time``): computed now, or a new copy of the cached one.
        """
        compute = partial(getattr(super(), f"make_{name}"), geom, observation, *args)
        cacheable = isinstance(observation, Observation) and is_time_independent(observation)
        if not self._per_unit_time and not (self.cache_irf and cacheable):
            return compute()
        duration = (
            observation.observation_time_duration
            if use_ontime
            else observation.observation_live_time_duration
        ).to_value("s")
        if not (self.cache_irf and cacheable):  # per second, but computed for this call
            return per_unit(compute(), duration)
        options = (
            self.background_oversampling,
            self.background_interp_missing_data,
            self.background_pad_offset,
            str(self.fov_rotation_step),
        )
        key = (name, observation_key(observation), geom_key(geom), options)
        if self._per_unit_time:  # a copy: the cached entry stays untouched
            return scaled(default_irf_cache.unit(key, compute, duration, kind), 1.0)
        return default_irf_cache.get(key, compute, duration, kind)

    def make_exposure(self, geom, observation, use_region_center=True):
        """Exposure map (cached per unit live time)."""
        return self._cached("exposure", "map", geom, observation, use_region_center)

    def make_background(self, geom, observation):
        """Background map (cached per unit on-time)."""
        return self._cached("background", "map", geom, observation, use_ontime=True)

    def make_psf(self, geom, observation):
        """PSF map (cached; its exposure map rescaled by live time)."""
        return self._cached("psf", "irf", geom, observation)

    def make_edisp(self, geom, observation):
        """Energy-dispersion map (cached; its exposure map rescaled by live time)."""
        return self._cached("edisp", "irf", geom, observation)

    def make_edisp_kernel(self, geom, observation):
        """Energy-dispersion kernel map (cached; exposure map rescaled by live time)."""
        return self._cached("edisp_kernel", "irf", geom, observation)


def _delegation_reason(geom, observation):
    """``(reason code, detail)`` when the binning kernel cannot make the counts, else None."""
    if not isinstance(observation, Observation):
        return "not-an-observation", (
            f"the observation is a {type(observation).__name__}: its maps are interpolated "
            "by gammapy, there are no events to bin"
        )
    problem = geometry_problem(geom)
    if problem is not None:
        return "unsupported-geometry", problem[1]
    return None
