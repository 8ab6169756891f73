"""Drop-in ``ReflectedRegionsBackgroundMaker``: off counts from rtafast's ``regions`` kernel.

gammapy's constructor and ``run(dataset, observation)``; the off regions come from the
region finder (rtafast's fast finders in :mod:`rtafast.makers.regions` when that
module exists, else gammapy's), the off counts are counted by the kernel with gammapy's
``CircleSkyRegion.contains`` semantics (see :mod:`rtafast.onoff.circles`) instead of
``RegionNDMap.fill_events`` on the union geometry; everything else (acceptances, the
``SpectrumDatasetOnOff``, the "no off region" warning and mask) is gammapy's code.
Repeated calls on one pointing reuse the finder's answer, the compiled circles and the
off geometry (value-keyed caches, :mod:`rtafast.onoff.reuse`, :mod:`rtafast.onoff.compiled`;
a cache hit does not call the finder, so it records no ``ReflectedRegionsFinder.run``).
"""

import copy
import importlib
import logging

from gammapy.data import PointingMode
from gammapy.makers import ReflectedRegionsBackgroundMaker as _GammapyMaker
from gammapy.makers import ReflectedRegionsFinder as _GammapyFinder
from gammapy.maps import RegionNDMap

from .. import dispatch
from ..onoff.circles import CircleProblem, circle_problem
from ..onoff.counter import OnOffCounter
from ..onoff.reuse import found_regions, off_geometry

__all__ = ["ReflectedRegionsBackgroundMaker"]

log = logging.getLogger(__name__)
ENTRY = "ReflectedRegionsBackgroundMaker.run"


def _default_finder_class():
    try:
        module = importlib.import_module("rtafast.makers.regions")
    except ImportError:
        return _GammapyFinder
    return getattr(module, "ReflectedRegionsFinder", _GammapyFinder)


#: One default-settings finder per class, copied for each maker (the finder's
#: ``__init__`` parses its default angle strings: ~0.25 ms, a tenth of a cold call).
_DEFAULT_FINDERS = {}


def _default_finder(**kwargs):
    """The default finder built with ``kwargs`` (a shallow copy of a prototype if none).

    The copy shares the prototype's ``Angle`` settings, which neither gammapy nor
    rtafast modify in place.
    """
    cls = _default_finder_class()
    if kwargs:
        return cls(**kwargs)
    prototype = _DEFAULT_FINDERS.get(cls)
    if prototype is None:
        prototype = _DEFAULT_FINDERS[cls] = cls()
    return copy.copy(prototype)


def _pointing_icrs(observation):
    """The pointing the off regions are reflected about: gammapy's
    ``observation.get_pointing_icrs(observation.tmid)``; for a fixed ICRS pointing its
    coordinates directly (the same values, without computing ``tmid``: ~0.6 ms)."""
    pointing = observation.pointing
    if pointing.mode == PointingMode.POINTING and pointing.fixed_icrs is not None:
        return pointing.fixed_icrs
    return observation.get_pointing_icrs(observation.tmid)


class ReflectedRegionsBackgroundMaker(_GammapyMaker):
    """gammapy's reflected-regions background maker, off counts from rtafast's kernel.

    Parameters
    ----------
    region_finder : `~gammapy.makers.RegionsFinder`, optional
        Default: rtafast's ``ReflectedRegionsFinder`` (gammapy's if absent), built with
        ``**kwargs``.
    exclusion_mask : `~gammapy.maps.WcsNDMap`, optional
        Exclusion mask (boolean, spatial only).
    array_backend : str or backend, optional
        Backend of the counting kernel (default ``$RTAFAST_BACKEND``).
    **kwargs
        Forwarded to the default finder.
    """

    def __init__(self, region_finder=None, exclusion_mask=None, array_backend=None, **kwargs):
        if region_finder is None:
            region_finder = _default_finder(**kwargs)
        elif kwargs:
            raise ValueError("No kwargs can be given if providing a region_finder")
        super().__init__(region_finder=region_finder, exclusion_mask=exclusion_mask)
        self.array_backend = array_backend
        self._fast = None

    def _delegation(self, dataset, observation):
        """Reason code why the kernel cannot count this call, or None."""
        geom = dataset.counts.geom
        if observation.rad_max is not None or geom.is_all_point_sky_regions:
            return "point-like-rad-max", "point-like IRF with RAD_MAX or a PointSkyRegion"
        problem = circle_problem(geom.region, geom.wcs)
        if problem is not None:
            return "non-circle-region", problem
        return None

    def make_counts_off(self, dataset, observation):
        """Off counts and acceptance (gammapy's ``make_counts_off``, counted by the kernel)."""
        reason = self._delegation(dataset, observation)
        if reason is not None:
            self._fast = reason
            return super().make_counts_off(dataset, observation)
        geom = dataset.counts.geom
        energy_axis = geom.axes["energy"]
        center = _pointing_icrs(observation)
        regions_off, wcs = found_regions(
            self.region_finder, geom.region, center, self.exclusion_mask
        )
        if len(regions_off) == 0:
            log.warning(
                "ReflectedRegionsBackgroundMaker failed. No OFF region found "
                f"outside exclusion mask for dataset '{dataset.name}'."
            )
            self._fast = None
            return None, RegionNDMap.from_geom(geom=geom, data=0)
        try:
            counter = OnOffCounter(
                geom.region, regions_off, energy_axis, self.array_backend, geom.wcs, wcs
            )
        except CircleProblem as error:
            self._fast = ("non-circle-region", str(error))
            return super().make_counts_off(dataset, observation)
        counter.add(observation.events)
        geom_off = off_geometry(regions_off, wcs, energy_axis)
        counts_off = RegionNDMap.from_geom(geom=geom_off)  # float32, as gammapy's
        counts_off.data[...] = counter.counts_off.reshape(geom_off.data_shape)
        acceptance_off = RegionNDMap.from_geom(geom=geom_off, data=len(regions_off))
        self._fast = None
        return counts_off, acceptance_off

    def run(self, dataset, observation):
        """gammapy's ``run`` (a ``SpectrumDatasetOnOff``), off counts from the kernel."""
        self._fast = None
        result = super().run(dataset, observation)
        if self._fast is None:
            dispatch.record(ENTRY, dispatch.FAST)
        else:
            dispatch.record(ENTRY, dispatch.GAMMAPY, self._fast[0], self._fast[1])
        return result
