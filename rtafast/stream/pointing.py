"""One observation's IRF maps on a stream's geometry, per second, computed once.

:class:`PointingMaps` holds an observation's exposure per second of live time, its
background per second of on-time, its PSF and EDisp maps with their exposure maps per
second of live time and its safe mask (rtafast's maker, :meth:`rtafast.makers.
MapDatasetMaker.run_per_unit_time`, from the per-second IRF cache: nothing is scaled
back and forth). A window scales them by the live time and on-time it holds of the
observation (:mod:`rtafast.cache.scaling`); the estimators read the same per-second
maps (:attr:`PointingMaps.stacked_unit`) and cache what they derive from them under
:attr:`PointingMaps.token`.
"""

import copy
import itertools
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.table import Table
from gammapy.data import GTI
from gammapy.datasets import MapDataset
from gammapy.maps import Map

from .._maps import map_copy, map_like
from ..cache.scaling import scaled_irf, scaled_map

__all__ = ["PointingMaps", "gti_union", "window_gti"]

#: Serial numbers of the :class:`PointingMaps` made in this process.
_tokens = itertools.count(1)


def window_gti(intervals, reference):
    """GTI of bunches ``(start, stop)`` (s since ``reference``), touching ones merged (as
    ``GTI.union`` merges them; a window of contiguous bunches is one interval).

    Parameters
    ----------
    intervals : sequence of (float, float)
        In time order, s.
    reference : `~astropy.time.Time`

    Returns
    -------
    `~gammapy.data.GTI`
    """
    merged = []
    for start, stop in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    bounds = np.array(merged) * u.s
    return GTI.create(bounds[:, 0], bounds[:, 1], reference_time=reference)


def gti_union(gti):
    """gammapy's ``gti.union()``, without its per-row parsing when nothing is to merge.

    ``GTI.union`` rebuilds its table from rows of scalar `~astropy.time.Time` values,
    which makes astropy guess their format by trying ten formats in turn: ten exceptions
    per interval, whose tracebacks keep the caller's frames (a stream window's arrays)
    alive until Python's oldest generation is collected. A window's GTI is already merged
    (:func:`window_gti`): when its intervals are sorted and neither overlap nor touch,
    the union has the same intervals, made here from the table's columns directly (the
    same values, reference time and meta); otherwise gammapy's ``union`` runs.

    Parameters
    ----------
    gti : `~gammapy.data.GTI`

    Returns
    -------
    `~gammapy.data.GTI`
    """
    table = gti.table
    start, stop = table["START"], table["STOP"]
    if len(table) > 1 and not np.all(stop[:-1] < start[1:]):
        return gti.union()
    columns = Table({"START": start.copy(), "STOP": stop.copy()}, meta=table.meta)
    return GTI(columns, reference_time=gti.time_ref)


@dataclass(eq=False)
class PointingMaps:
    """An observation's per-second IRF maps on one geometry (made once per observation).

    Parameters
    ----------
    observation : `~gammapy.data.Observation`
    key : str
        Content key of its IRFs and pointing (:func:`rtafast.cache.irf.observation_key`).
    unit : `~gammapy.datasets.MapDataset`
        Exposure per second of live time (cm2), background per second of on-time,
        PSF/EDisp maps with exposure maps per second of live time, safe mask; no counts.
    name : str
        Name of the datasets made from them.

    Attributes
    ----------
    token : int
        Unique in the process: the key under which caches keep what they derive from
        these maps (they never change).
    """

    observation: object
    key: object
    unit: MapDataset
    name: str
    token: int = field(default_factory=lambda: next(_tokens), init=False)
    _stacked_unit: object = field(default=None, init=False, repr=False)
    _empty_gti: object = field(default=None, init=False, repr=False)
    _weights: dict = field(default_factory=dict, init=False, repr=False)

    # -- per-observation datasets -------------------------------------------------------
    def observation_dataset(self, geom, counts, livetime, ontime, gti):
        """This observation's dataset of a window: the per-second maps times ``livetime``
        and ``ontime`` (s), with ``counts`` (host array of ``geom``'s shape) and ``gti``."""
        unit = self.unit
        return MapDataset(
            counts=Map.from_geom(geom, data=counts),
            exposure=scaled_map(unit.exposure, livetime),
            background=scaled_map(unit.background, ontime),
            psf=scaled_irf(unit.psf, livetime),
            edisp=scaled_irf(unit.edisp, livetime),
            mask_safe=map_copy(unit.mask_safe),
            gti=gti,
        )

    def make_stacked_unit(self, geom, energy_axis_true, gti):
        """Make :attr:`stacked_unit` now if not made yet (``gti``: the first window's)."""
        if self._stacked_unit is not None:
            return
        empty = MapDataset.create(geom, energy_axis_true=energy_axis_true, name=self.name)
        self._empty_gti = empty.gti.copy() if empty.gti is not None else None
        zeros = np.zeros(geom.data_shape)
        empty.stack(self.observation_dataset(geom, zeros, 1.0, 1.0, gti))
        self._stacked_unit = empty

    @property
    def stacked_unit(self):
        """gammapy's stack of the per-second maps (1 s of live time and on-time, no
        counts) into an empty dataset: a window of this observation alone at 1 s, the
        maps its datasets are scaled from and its estimators' inputs computed from.
        None until :meth:`make_stacked_unit`."""
        return self._stacked_unit

    def stacked_gti(self, gti):
        """The GTI of a window of this observation alone, as gammapy's stack into an
        empty dataset makes it from the bunches' ``gti`` (:func:`window_gti`)."""
        if self._empty_gti is None:
            return None
        merged = self._empty_gti.copy()
        merged.stack(gti)
        return gti_union(merged)

    def window_dataset(self, counts, livetime, ontime, gti):
        """The dataset of a window holding only this observation (from
        :attr:`stacked_unit`, rescaled: stacking is linear in live time and on-time).

        Parameters
        ----------
        counts : ndarray
            The window's counts, already weighted by the safe mask (host).
        livetime, ontime : float
            s.
        gti : `~gammapy.data.GTI` or None
            The dataset's (:meth:`stacked_gti`).
        """
        unit = self._stacked_unit
        return MapDataset(
            counts=map_like(unit.counts, counts.astype(unit.counts.data.dtype)),
            exposure=scaled_map(unit.exposure, livetime),
            background=scaled_map(unit.background, ontime),
            psf=scaled_irf(unit.psf, livetime),
            edisp=scaled_irf(unit.edisp, livetime),
            mask_safe=map_copy(unit.mask_safe),
            mask_fit=map_copy(unit.mask_fit),
            gti=gti,
            meta_table=unit.meta_table.copy() if unit.meta_table is not None else None,
            meta=copy.deepcopy(unit.meta),
            name=self.name,
        )

    # -- on the backend -----------------------------------------------------------------
    def counts_weights(self, backend):
        """The safe mask as counts weights on ``backend`` (float64, uploaded once), or
        None without a safe mask. gammapy's stack weights the counts by it."""
        if backend.name not in self._weights:
            mask = self.unit.mask_safe
            weights = None if mask is None else backend.upload(mask.data, np.float64)
            self._weights[backend.name] = weights
        return self._weights[backend.name]
